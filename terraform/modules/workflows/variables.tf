variable "name" {
  description = "Name of the HES export state machine (meterflow/localcloud/stack.py: <stack>-hes-export)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,76}$", var.name))
    error_message = "State machine names here are 1-76 characters of A-Z a-z 0-9 _ - (the role adds '-sfn')."
  }
}

variable "account_id" {
  description = "AWS account id (scopes the role's trust policy)."
  type        = string
}

variable "region" {
  description = "AWS region of the stack."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"
}

variable "export_jobs_queue_url" {
  description = "URL of the export-jobs queue (template variable export_jobs_queue_url)."
  type        = string
}

variable "export_jobs_queue_arn" {
  description = "ARN of the export-jobs queue (the only queue the state machine may send to)."
  type        = string
}

variable "file_requests_table_name" {
  description = "Name of the file-requests table (template variable file_requests_table)."
  type        = string
}

variable "file_requests_table_arn" {
  description = "ARN of the file-requests table (the only table the state machine may update)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the stack's KMS key (export-jobs queue and the log group are encrypted with it)."
  type        = string
}

variable "max_concurrency" {
  description = "MaxConcurrency of the ExportChunks Map state."
  type        = number

  validation {
    condition     = var.max_concurrency >= 1 && var.max_concurrency <= 40
    error_message = "Between 1 and 40 concurrent chunks."
  }
}

variable "plan_timeout_seconds" {
  description = "TimeoutSeconds of the PlanExport task."
  type        = number
}

variable "chunk_timeout_seconds" {
  description = "TimeoutSeconds of each ExportChunk task."
  type        = number
}

variable "chunk_heartbeat_seconds" {
  description = "HeartbeatSeconds of each ExportChunk task."
  type        = number
}

variable "finalize_timeout_seconds" {
  description = "TimeoutSeconds of the FinalizeExport task."
  type        = number
}

variable "finalize_heartbeat_seconds" {
  description = "HeartbeatSeconds of the FinalizeExport task."
  type        = number
}

variable "worker_heartbeat_seconds" {
  description = "Interval of the workers' SendTaskHeartbeat calls (MF_HEARTBEAT_INTERVAL_SECONDS); must be shorter than both HeartbeatSeconds."
  type        = number
}

variable "log_group_name" {
  description = "Name of the CloudWatch log group of the export state machine's execution history."
  type        = string
}

variable "log_retention_in_days" {
  description = "Retention of the state machines' logs."
  type        = number
}

variable "tags" {
  description = "Tags for the state machines, their roles and their log groups."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Lake workflows
# ---------------------------------------------------------------------------------------------

variable "lake_ingest_name" {
  description = "Name of the lake-ingest state machine (meterflow/localcloud/stack.py: <stack>-lake-ingest)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,76}$", var.lake_ingest_name))
    error_message = "State machine names here are 1-76 characters of A-Z a-z 0-9 _ - (the role adds '-sfn')."
  }
}

variable "input_adapter_name" {
  description = "Name of the input-adapter state machine (meterflow/localcloud/stack.py: <stack>-input-adapter)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,76}$", var.input_adapter_name))
    error_message = "State machine names here are 1-76 characters of A-Z a-z 0-9 _ - (the role adds '-sfn')."
  }
}

variable "lake_ingest_log_group_name" {
  description = "Name of the CloudWatch log group of the lake-ingest state machine."
  type        = string
}

variable "input_adapter_log_group_name" {
  description = "Name of the CloudWatch log group of the input-adapter state machine."
  type        = string
}

variable "lake_jobs_queue_url" {
  description = "URL of the lake-jobs queue (template variable lake_jobs_queue_url of both lake workflows)."
  type        = string
}

variable "lake_jobs_queue_arn" {
  description = "ARN of the lake-jobs queue (the only queue the lake workflows may send to)."
  type        = string
}

variable "lake_files_table_name" {
  description = "Name of the lake-files table (template variable lake_files_table)."
  type        = string
}

variable "lake_files_table_arn" {
  description = "ARN of the lake-files table (lake-ingest records file status, input-adapter reads it)."
  type        = string
}

variable "integrations_table_name" {
  description = "Name of the integrations table (template variable integrations_table)."
  type        = string
}

variable "integrations_table_arn" {
  description = "ARN of the integrations table (the input adapter claims and releases integrations)."
  type        = string
}

variable "alerts_topic_arn" {
  description = "ARN of the alerts topic (template variable alerts_topic_arn; the input adapter publishes failures)."
  type        = string
}

variable "inbound_bucket_name" {
  description = "Name of the inbound bucket (template variable inbound_bucket)."
  type        = string
}

variable "inbound_bucket_arn" {
  description = "ARN of the inbound bucket (the input adapter archives and deletes files in it)."
  type        = string
}

variable "inbound_landing_prefix" {
  description = "Key prefix of downloaded, still compressed HES files in the inbound bucket."
  type        = string
  default     = "landing/"
}

variable "inbound_uncompressed_prefix" {
  description = "Key prefix of uncompressed files being ingested in the inbound bucket."
  type        = string
  default     = "uncompressed/"
}

variable "inbound_processed_prefix" {
  description = "Key prefix of archived originals in the inbound bucket."
  type        = string
  default     = "processed/"
}

variable "lake_tuning" {
  description = "Concurrency, timeouts, heartbeats and poll bounds of the lake workflows (meterflow/localcloud/stack.py LakeTuning, template variables of the same names)."
  type = object({
    range_max_concurrency        = number
    compact_max_concurrency      = number
    split_timeout_seconds        = number
    stage_timeout_seconds        = number
    stage_heartbeat_seconds      = number
    compact_timeout_seconds      = number
    compact_heartbeat_seconds    = number
    finalize_timeout_seconds     = number
    hes_job_timeout_seconds      = number
    transfer_timeout_seconds     = number
    transfer_heartbeat_seconds   = number
    hes_poll_interval_seconds    = number
    hes_poll_max_attempts        = number
    ingest_poll_interval_seconds = number
    ingest_poll_max_attempts     = number
  })

  validation {
    condition = (
      var.lake_tuning.range_max_concurrency >= 1 && var.lake_tuning.range_max_concurrency <= 40
      && var.lake_tuning.compact_max_concurrency >= 1 && var.lake_tuning.compact_max_concurrency <= 40
    )
    error_message = "Map concurrencies are between 1 and 40."
  }
}

# ---------------------------------------------------------------------------------------------
# On-premises bridge
# ---------------------------------------------------------------------------------------------

variable "historian_backfill_name" {
  description = "Name of the historian-backfill state machine (meterflow/localcloud/stack.py: <stack>-historian-backfill)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,76}$", var.historian_backfill_name))
    error_message = "State machine names here are 1-76 characters of A-Z a-z 0-9 _ - (the role adds '-sfn')."
  }
}

variable "historian_backfill_log_group_name" {
  description = "Name of the CloudWatch log group of the historian-backfill state machine."
  type        = string
}

variable "bridge_jobs_queue_url" {
  description = "URL of the bridge-jobs queue (template variable bridge_jobs_queue_url of historian-backfill)."
  type        = string
}

variable "bridge_jobs_queue_arn" {
  description = "ARN of the bridge-jobs queue (historian-backfill sends its PrepareUpload and VerifyUpload jobs there)."
  type        = string
}

variable "site_dispatch_queue_url" {
  description = "URL of the site-dispatch queue (template variable site_dispatch_queue_url)."
  type        = string
}

variable "site_dispatch_queue_arn" {
  description = "ARN of the site-dispatch queue (historian-backfill sends its site jobs there)."
  type        = string
}

variable "bridge_jobs_table_name" {
  description = "Name of the bridge-jobs table (template variable bridge_jobs_table)."
  type        = string
}

variable "bridge_jobs_table_arn" {
  description = "ARN of the bridge-jobs table (historian-backfill marks failed jobs in it)."
  type        = string
}

variable "bridge_tuning" {
  description = "Timeout, heartbeat and retries of the historian-backfill RunOnSite task (meterflow/localcloud/stack.py BridgeTuning, template variables of the same names)."
  type = object({
    site_timeout_seconds        = number
    site_heartbeat_seconds      = number
    site_retry_interval_seconds = number
    site_max_attempts           = number
  })

  validation {
    condition = (
      var.bridge_tuning.site_max_attempts >= 0 && var.bridge_tuning.site_max_attempts <= 5
      && floor(var.bridge_tuning.site_max_attempts) == var.bridge_tuning.site_max_attempts
    )
    error_message = "site_max_attempts is a whole number from 0 to 5."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic that alarms notify (the stack's alerts topic), when they fire and when they clear."
  type        = string
}

variable "alarm_period_seconds" {
  description = "Period of the alarms (60, 300, 900 or 3600 s; modules/alarms checks it); one breaching period fires an alarm."
  type        = number
  default     = 300
}
