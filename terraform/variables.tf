# ---------------------------------------------------------------------------------------------
# Stack
# ---------------------------------------------------------------------------------------------

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "An AWS region name such as us-east-1."
  }
}

variable "stack_name" {
  description = "Name of the stack; every resource name derives from it (meterflow/localcloud/stack.py stack_spec)."
  type        = string
  default     = "meterflow"

  validation {
    # 32 keeps every derived name within its limit, e.g. the bucket <stack>-athena-results-<account>
    # (60 of 63) and the role <stack>-input-adapter-scheduler-lambda (63 of 64).
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.stack_name))
    error_message = "3-32 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'."
  }
}

variable "tags" {
  description = "Tags added to every resource (provider default_tags), next to Project, Stack and ManagedBy."
  type        = map(string)
  default     = {}
}

variable "log_retention_in_days" {
  description = "Retention of every CloudWatch log group of the stack."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "A retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ... 3653 days)."
  }
}

# ---------------------------------------------------------------------------------------------
# Encryption and data protection
# ---------------------------------------------------------------------------------------------

variable "kms_key_administrator_arns" {
  description = "IAM principals allowed to administer the stack's KMS key, besides IAM policies of the account."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.kms_key_administrator_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:", arn))])
    error_message = "IAM principal ARNs."
  }
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before a scheduled deletion of the stack's KMS key completes."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "KMS accepts 7 to 30 days."
  }
}

variable "table_deletion_protection" {
  description = "Whether the DynamoDB tables (file-requests, integrations, lake-files, bridge-jobs) refuse deletion (set false, apply, then destroy)."
  type        = bool
  default     = true
}

variable "force_destroy_bucket" {
  description = "Whether `terraform destroy` may delete the buckets (exports, inbound, integrated, Athena results), the Athena workgroup and the image repository while they hold objects, queries or images."
  type        = bool
  default     = false
}

variable "access_logs_bucket_name" {
  description = "Existing bucket for S3 server access logs of the stack's buckets (e.g. the organisation's log archive); null disables them."
  type        = string
  default     = null
}

variable "secret_recovery_window_in_days" {
  description = "Days a deleted SFTP private-key secret can be restored (0 = delete at once)."
  type        = number
  default     = 7

  validation {
    condition     = var.secret_recovery_window_in_days == 0 || (var.secret_recovery_window_in_days >= 7 && var.secret_recovery_window_in_days <= 30)
    error_message = "0, or 7 to 30 days."
  }
}

# ---------------------------------------------------------------------------------------------
# Export workflow (meterflow/localcloud/stack.py ExportTuning: same names, same defaults)
# ---------------------------------------------------------------------------------------------

variable "export_max_concurrency" {
  description = "Chunks computed in parallel by one export (MaxConcurrency of the ExportChunks Map)."
  type        = number
  default     = 8

  validation {
    condition     = var.export_max_concurrency >= 1 && var.export_max_concurrency <= 40 && floor(var.export_max_concurrency) == var.export_max_concurrency
    error_message = "A whole number from 1 to 40."
  }
}

variable "plan_timeout_seconds" {
  description = "TimeoutSeconds of the PlanExport task."
  type        = number
  default     = 120

  validation {
    condition     = var.plan_timeout_seconds >= 10 && var.plan_timeout_seconds <= 900 && floor(var.plan_timeout_seconds) == var.plan_timeout_seconds
    error_message = "A whole number of seconds from 10 to 900 (the worker is a Lambda function)."
  }
}

variable "chunk_timeout_seconds" {
  description = "TimeoutSeconds of each ExportChunk task; also the export worker's Lambda timeout (export-jobs visibility = this + 60)."
  type        = number
  default     = 600

  validation {
    condition     = var.chunk_timeout_seconds >= 30 && var.chunk_timeout_seconds <= 900 && floor(var.chunk_timeout_seconds) == var.chunk_timeout_seconds
    error_message = "A whole number of seconds from 30 to 900 (Lambda's maximum timeout)."
  }
}

variable "chunk_heartbeat_seconds" {
  description = "HeartbeatSeconds of each ExportChunk task (shorter than chunk_timeout_seconds)."
  type        = number
  default     = 60

  validation {
    condition     = var.chunk_heartbeat_seconds >= 5 && floor(var.chunk_heartbeat_seconds) == var.chunk_heartbeat_seconds
    error_message = "A whole number of seconds, at least 5."
  }
}

variable "finalize_timeout_seconds" {
  description = "TimeoutSeconds of the FinalizeExport task."
  type        = number
  default     = 600

  validation {
    condition     = var.finalize_timeout_seconds >= 30 && var.finalize_timeout_seconds <= 900 && floor(var.finalize_timeout_seconds) == var.finalize_timeout_seconds
    error_message = "A whole number of seconds from 30 to 900 (the worker is a Lambda function)."
  }
}

variable "finalize_heartbeat_seconds" {
  description = "HeartbeatSeconds of the FinalizeExport task (shorter than finalize_timeout_seconds)."
  type        = number
  default     = 60

  validation {
    condition     = var.finalize_heartbeat_seconds >= 5 && floor(var.finalize_heartbeat_seconds) == var.finalize_heartbeat_seconds
    error_message = "A whole number of seconds, at least 5."
  }
}

# ---------------------------------------------------------------------------------------------
# Lake workflows (meterflow/localcloud/stack.py LakeTuning: same names, same defaults; LakeTuning's
# finalize_timeout_seconds is lake_finalize_timeout_seconds here, finalize_timeout_seconds being the
# export workflow's)
# ---------------------------------------------------------------------------------------------

variable "range_max_concurrency" {
  description = "Byte ranges of one file staged in parallel (MaxConcurrency of the lake-ingest StageRanges Map)."
  type        = number
  default     = 8

  validation {
    condition     = var.range_max_concurrency >= 1 && var.range_max_concurrency <= 40 && floor(var.range_max_concurrency) == var.range_max_concurrency
    error_message = "A whole number from 1 to 40."
  }
}

variable "compact_max_concurrency" {
  description = "Partition groups of one file merged in parallel (MaxConcurrency of the lake-ingest CompactPartitions Map)."
  type        = number
  default     = 8

  validation {
    condition     = var.compact_max_concurrency >= 1 && var.compact_max_concurrency <= 40 && floor(var.compact_max_concurrency) == var.compact_max_concurrency
    error_message = "A whole number from 1 to 40."
  }
}

variable "split_timeout_seconds" {
  description = "TimeoutSeconds of the lake-ingest SplitFile and PlanCompaction tasks."
  type        = number
  default     = 120

  validation {
    condition     = var.split_timeout_seconds >= 10 && var.split_timeout_seconds <= 900 && floor(var.split_timeout_seconds) == var.split_timeout_seconds
    error_message = "A whole number of seconds from 10 to 900 (the worker is a Lambda function)."
  }
}

variable "stage_timeout_seconds" {
  description = "TimeoutSeconds of each StageRange task; the longest of stage, compact and transfer timeouts is the lake worker's Lambda timeout (lake-jobs visibility = that + 60)."
  type        = number
  default     = 900

  validation {
    condition     = var.stage_timeout_seconds >= 30 && var.stage_timeout_seconds <= 900 && floor(var.stage_timeout_seconds) == var.stage_timeout_seconds
    error_message = "A whole number of seconds from 30 to 900 (Lambda's maximum timeout)."
  }
}

variable "stage_heartbeat_seconds" {
  description = "HeartbeatSeconds of each StageRange task (shorter than stage_timeout_seconds)."
  type        = number
  default     = 60

  validation {
    condition     = var.stage_heartbeat_seconds >= 5 && floor(var.stage_heartbeat_seconds) == var.stage_heartbeat_seconds
    error_message = "A whole number of seconds, at least 5."
  }
}

variable "compact_timeout_seconds" {
  description = "TimeoutSeconds of each CompactGroup task."
  type        = number
  default     = 900

  validation {
    condition     = var.compact_timeout_seconds >= 30 && var.compact_timeout_seconds <= 900 && floor(var.compact_timeout_seconds) == var.compact_timeout_seconds
    error_message = "A whole number of seconds from 30 to 900 (Lambda's maximum timeout)."
  }
}

variable "compact_heartbeat_seconds" {
  description = "HeartbeatSeconds of each CompactGroup task (shorter than compact_timeout_seconds)."
  type        = number
  default     = 60

  validation {
    condition     = var.compact_heartbeat_seconds >= 5 && floor(var.compact_heartbeat_seconds) == var.compact_heartbeat_seconds
    error_message = "A whole number of seconds, at least 5."
  }
}

variable "lake_finalize_timeout_seconds" {
  description = "TimeoutSeconds of the lake-ingest FinalizeFile task (LakeTuning.finalize_timeout_seconds)."
  type        = number
  default     = 300

  validation {
    condition     = var.lake_finalize_timeout_seconds >= 10 && var.lake_finalize_timeout_seconds <= 900 && floor(var.lake_finalize_timeout_seconds) == var.lake_finalize_timeout_seconds
    error_message = "A whole number of seconds from 10 to 900 (the worker is a Lambda function)."
  }
}

variable "hes_job_timeout_seconds" {
  description = "TimeoutSeconds of the input adapter's HES API tasks (RequestFile, CheckFileStatus)."
  type        = number
  default     = 120

  validation {
    condition     = var.hes_job_timeout_seconds >= 10 && var.hes_job_timeout_seconds <= 900 && floor(var.hes_job_timeout_seconds) == var.hes_job_timeout_seconds
    error_message = "A whole number of seconds from 10 to 900 (the worker is a Lambda function)."
  }
}

variable "transfer_timeout_seconds" {
  description = "TimeoutSeconds of the input adapter's DownloadFile and UncompressFile tasks."
  type        = number
  default     = 900

  validation {
    condition     = var.transfer_timeout_seconds >= 30 && var.transfer_timeout_seconds <= 900 && floor(var.transfer_timeout_seconds) == var.transfer_timeout_seconds
    error_message = "A whole number of seconds from 30 to 900 (Lambda's maximum timeout)."
  }
}

variable "transfer_heartbeat_seconds" {
  description = "HeartbeatSeconds of the DownloadFile and UncompressFile tasks (shorter than transfer_timeout_seconds)."
  type        = number
  default     = 60

  validation {
    condition     = var.transfer_heartbeat_seconds >= 5 && floor(var.transfer_heartbeat_seconds) == var.transfer_heartbeat_seconds
    error_message = "A whole number of seconds, at least 5."
  }
}

variable "hes_poll_interval_seconds" {
  description = "Wait between two HES file status checks of the input adapter."
  type        = number
  default     = 10

  validation {
    condition     = var.hes_poll_interval_seconds >= 1 && floor(var.hes_poll_interval_seconds) == var.hes_poll_interval_seconds
    error_message = "A whole number of seconds, at least 1."
  }
}

variable "hes_poll_max_attempts" {
  description = "HES file status checks before the input adapter gives up (PollTimeout)."
  type        = number
  default     = 90

  validation {
    condition     = var.hes_poll_max_attempts >= 1 && floor(var.hes_poll_max_attempts) == var.hes_poll_max_attempts
    error_message = "A whole number, at least 1."
  }
}

variable "ingest_poll_interval_seconds" {
  description = "Wait between two lake-files status checks while the input adapter waits for ingestion."
  type        = number
  default     = 10

  validation {
    condition     = var.ingest_poll_interval_seconds >= 1 && floor(var.ingest_poll_interval_seconds) == var.ingest_poll_interval_seconds
    error_message = "A whole number of seconds, at least 1."
  }
}

variable "ingest_poll_max_attempts" {
  description = "Lake-files status checks before the input adapter gives up (IngestTimeout)."
  type        = number
  default     = 180

  validation {
    condition     = var.ingest_poll_max_attempts >= 1 && floor(var.ingest_poll_max_attempts) == var.ingest_poll_max_attempts
    error_message = "A whole number, at least 1."
  }
}

variable "scheduler_rate_minutes" {
  description = "Minutes between two runs of the input adapter scheduler (EventBridge rate expression)."
  type        = number
  default     = 5

  validation {
    condition     = var.scheduler_rate_minutes >= 1 && floor(var.scheduler_rate_minutes) == var.scheduler_rate_minutes
    error_message = "A whole number of minutes, at least 1."
  }
}

variable "scheduler_enabled" {
  description = "Whether the input adapter schedule is enabled (false pauses every integration without deleting anything)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# On-premises bridge (meterflow/localcloud/stack.py BridgeTuning: same names, same defaults). The
# historian-backfill RunOnSite task waits for the site's worker; the worker heartbeats at a third of
# site_heartbeat_seconds (onprem_worker/config.py MF_HEARTBEAT_FRACTION).
# ---------------------------------------------------------------------------------------------

variable "site_timeout_seconds" {
  description = "TimeoutSeconds of each attempt of the historian-backfill RunOnSite task (the site's export and upload)."
  type        = number
  default     = 3600

  validation {
    condition     = var.site_timeout_seconds >= 60 && var.site_timeout_seconds <= 43200 && floor(var.site_timeout_seconds) == var.site_timeout_seconds
    error_message = "A whole number of seconds from 60 to 43200 (12 h, the lifetime of the presigned upload URL)."
  }
}

variable "site_heartbeat_seconds" {
  description = "HeartbeatSeconds of the RunOnSite task (shorter than site_timeout_seconds): a worker that goes silent this long fails the attempt, which is retried."
  type        = number
  default     = 60

  validation {
    condition     = var.site_heartbeat_seconds >= 10 && floor(var.site_heartbeat_seconds) == var.site_heartbeat_seconds
    error_message = "A whole number of seconds, at least 10 (the worker heartbeats at a fraction of it)."
  }
}

variable "site_retry_interval_seconds" {
  description = "Wait before the first retry of a RunOnSite attempt that timed out, lost its heartbeat or could not be published (doubling afterwards)."
  type        = number
  default     = 5

  validation {
    condition     = var.site_retry_interval_seconds >= 1 && var.site_retry_interval_seconds <= 300 && floor(var.site_retry_interval_seconds) == var.site_retry_interval_seconds
    error_message = "A whole number of seconds from 1 to 300."
  }
}

variable "site_max_attempts" {
  description = "Retries of the RunOnSite task (Retry MaxAttempts) after its first attempt; 0 disables them."
  type        = number
  default     = 2

  validation {
    condition     = var.site_max_attempts >= 0 && var.site_max_attempts <= 5 && floor(var.site_max_attempts) == var.site_max_attempts
    error_message = "A whole number from 0 to 5."
  }
}

# ---------------------------------------------------------------------------------------------
# Lake storage, alerts and queries
# ---------------------------------------------------------------------------------------------

variable "inbound_processed_transition_days" {
  description = "Days after which archived originals under processed/ in the inbound bucket move to S3 Glacier Instant Retrieval."
  type        = number
  default     = 30

  validation {
    condition     = var.inbound_processed_transition_days >= 1 && floor(var.inbound_processed_transition_days) == var.inbound_processed_transition_days
    error_message = "A whole number of days, at least 1."
  }
}

variable "inbound_transient_expiration_days" {
  description = "Days after which leftovers under landing/ and uncompressed/ of the inbound bucket expire (the input adapter deletes them once a file is ingested; leftovers are failed runs kept for inspection)."
  type        = number
  default     = 14

  validation {
    condition     = var.inbound_transient_expiration_days >= 1 && floor(var.inbound_transient_expiration_days) == var.inbound_transient_expiration_days
    error_message = "A whole number of days, at least 1."
  }
}

variable "integrated_staging_expiration_days" {
  description = "Days after which staged rows under staging/ of the integrated bucket expire (compaction consumes them within a run)."
  type        = number
  default     = 3

  validation {
    condition     = var.integrated_staging_expiration_days >= 1 && floor(var.integrated_staging_expiration_days) == var.integrated_staging_expiration_days
    error_message = "A whole number of days, at least 1."
  }
}

variable "integrated_noncurrent_version_expiration_days" {
  description = "Days after which noncurrent versions in the integrated bucket (every partition rewrite leaves one) are deleted."
  type        = number
  default     = 7

  validation {
    condition     = var.integrated_noncurrent_version_expiration_days >= 1 && floor(var.integrated_noncurrent_version_expiration_days) == var.integrated_noncurrent_version_expiration_days
    error_message = "A whole number of days, at least 1."
  }
}

variable "athena_results_expiration_days" {
  description = "Days after which Athena query results expire."
  type        = number
  default     = 7

  validation {
    condition     = var.athena_results_expiration_days >= 1 && floor(var.athena_results_expiration_days) == var.athena_results_expiration_days
    error_message = "A whole number of days, at least 1."
  }
}

variable "athena_bytes_scanned_cutoff_per_query" {
  description = "Athena cancels a query of the lake workgroup that scans more than this many bytes."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.athena_bytes_scanned_cutoff_per_query >= 10485760 && floor(var.athena_bytes_scanned_cutoff_per_query) == var.athena_bytes_scanned_cutoff_per_query
    error_message = "A whole number of bytes, at least 10485760 (10 MB, Athena's minimum)."
  }
}

variable "alarm_period_seconds" {
  description = "Period of the CloudWatch alarms on DLQs, executions and functions (each notifies the alerts topic on its first breaching period)."
  type        = number
  default     = 300
}

variable "alert_email_addresses" {
  description = "E-mail addresses subscribed to the alerts topic (each must confirm the subscription); empty = no subscription."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for address in var.alert_email_addresses : can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", address))])
    error_message = "E-mail addresses."
  }
}

# ---------------------------------------------------------------------------------------------
# Lambda functions (one container image, terraform/README.md "Deploy")
# ---------------------------------------------------------------------------------------------

variable "lambda_image_uri" {
  description = "The functions' container image, pinned by digest: the output LambdaImageRepositoryUrl + \"@sha256:<digest>\", as printed by `make image`. Null only for the first, targeted apply of module.registry (README.md, \"Deploy to AWS\")."
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "Instruction set of the image (`make package` builds its wheels for x86_64)."
  type        = string
  default     = "x86_64"
}

variable "lambda_image_retention_count" {
  description = "How many images the repository keeps (older ones expire; keep enough to roll back)."
  type        = number
  default     = 10

  validation {
    condition     = var.lambda_image_retention_count >= 2
    error_message = "Keep at least the running image and one to roll back to."
  }
}

variable "api_reserved_concurrency" {
  description = "Reserved concurrent executions of the API function; -1 leaves it unreserved."
  type        = number
  default     = 20

  validation {
    condition     = var.api_reserved_concurrency >= -1 && floor(var.api_reserved_concurrency) == var.api_reserved_concurrency
    error_message = "A whole number, -1 (unreserved) or more."
  }
}

variable "start_file_export_reserved_concurrency" {
  description = "Reserved concurrent executions of the start-file-export function; -1 leaves it unreserved."
  type        = number
  default     = 5

  validation {
    condition     = var.start_file_export_reserved_concurrency >= -1 && floor(var.start_file_export_reserved_concurrency) == var.start_file_export_reserved_concurrency
    error_message = "A whole number, -1 (unreserved) or more."
  }
}

variable "export_worker_reserved_concurrency" {
  description = "Reserved concurrent executions of the export worker (at least export_max_concurrency per concurrent export); -1 leaves it unreserved."
  type        = number
  default     = 16

  validation {
    condition     = var.export_worker_reserved_concurrency >= -1 && floor(var.export_worker_reserved_concurrency) == var.export_worker_reserved_concurrency
    error_message = "A whole number, -1 (unreserved) or more."
  }
}

variable "export_worker_memory_size" {
  description = "Memory of the export worker in MB (CPU scales with memory; gzip is CPU-bound)."
  type        = number
  default     = 3008

  validation {
    condition     = var.export_worker_memory_size >= 128 && var.export_worker_memory_size <= 10240
    error_message = "Lambda accepts 128 to 10240 MB."
  }
}

variable "lake_worker_reserved_concurrency" {
  description = "Reserved concurrent executions of the lake worker (at least range_max_concurrency per file ingested at once); -1 leaves it unreserved."
  type        = number
  default     = 16

  validation {
    condition     = var.lake_worker_reserved_concurrency >= -1 && floor(var.lake_worker_reserved_concurrency) == var.lake_worker_reserved_concurrency
    error_message = "A whole number, -1 (unreserved) or more."
  }
}

variable "lake_worker_memory_size" {
  description = "Memory of the lake worker in MB (parsing, Parquet encoding and merges are CPU- and memory-bound)."
  type        = number
  default     = 3008

  validation {
    condition     = var.lake_worker_memory_size >= 128 && var.lake_worker_memory_size <= 10240
    error_message = "Lambda accepts 128 to 10240 MB."
  }
}

variable "start_file_ingest_reserved_concurrency" {
  description = "Reserved concurrent executions of the start-file-ingest function; -1 leaves it unreserved."
  type        = number
  default     = 2

  validation {
    condition     = var.start_file_ingest_reserved_concurrency >= -1 && floor(var.start_file_ingest_reserved_concurrency) == var.start_file_ingest_reserved_concurrency
    error_message = "A whole number, -1 (unreserved) or more."
  }
}

variable "merge_late_reads_reserved_concurrency" {
  description = "Reserved concurrent executions of the late-reads consumer; -1 leaves it unreserved."
  type        = number
  default     = 2

  validation {
    condition     = var.merge_late_reads_reserved_concurrency >= -1 && floor(var.merge_late_reads_reserved_concurrency) == var.merge_late_reads_reserved_concurrency
    error_message = "A whole number, -1 (unreserved) or more."
  }
}

variable "input_adapter_scheduler_reserved_concurrency" {
  description = "Reserved concurrent executions of the input adapter scheduler (1: ticks never overlap); -1 leaves it unreserved."
  type        = number
  default     = 1

  validation {
    condition     = var.input_adapter_scheduler_reserved_concurrency >= -1 && floor(var.input_adapter_scheduler_reserved_concurrency) == var.input_adapter_scheduler_reserved_concurrency
    error_message = "A whole number, -1 (unreserved) or more."
  }
}

variable "bridge_worker_reserved_concurrency" {
  description = "Reserved concurrent executions of the bridge worker (prepares and verifies backfill uploads); -1 leaves it unreserved."
  type        = number
  default     = 2

  validation {
    condition     = var.bridge_worker_reserved_concurrency >= -1 && floor(var.bridge_worker_reserved_concurrency) == var.bridge_worker_reserved_concurrency
    error_message = "A whole number, -1 (unreserved) or more."
  }
}

variable "site_dispatcher_reserved_concurrency" {
  description = "Reserved concurrent executions of the site dispatcher (publishes site jobs); -1 leaves it unreserved."
  type        = number
  default     = 2

  validation {
    condition     = var.site_dispatcher_reserved_concurrency >= -1 && floor(var.site_dispatcher_reserved_concurrency) == var.site_dispatcher_reserved_concurrency
    error_message = "A whole number, -1 (unreserved) or more."
  }
}

variable "site_messages_reserved_concurrency" {
  description = "Reserved concurrent executions of the site-messages handler (results, progress and heartbeats of every running site job); -1 leaves it unreserved."
  type        = number
  default     = 4

  validation {
    condition     = var.site_messages_reserved_concurrency >= -1 && floor(var.site_messages_reserved_concurrency) == var.site_messages_reserved_concurrency
    error_message = "A whole number, -1 (unreserved) or more."
  }
}

# ---------------------------------------------------------------------------------------------
# HES fleet (meterflow/hes/settings.py: MF_HES_FLEET_*, MF_HES_EXPORT_*, MF_FIXED_NOW; same defaults)
# ---------------------------------------------------------------------------------------------

variable "fleet_meter_count" {
  description = "Number of simulated meters (MF_HES_FLEET_METER_COUNT)."
  type        = number
  default     = 10000

  validation {
    condition     = var.fleet_meter_count >= 1 && floor(var.fleet_meter_count) == var.fleet_meter_count
    error_message = "A whole number, at least 1."
  }
}

variable "fleet_interval_minutes" {
  description = "Reading interval in minutes (MF_HES_FLEET_INTERVAL_MINUTES)."
  type        = number
  default     = 15

  validation {
    condition     = contains([1, 5, 10, 15, 30, 60], var.fleet_interval_minutes)
    error_message = "1, 5, 10, 15, 30 or 60 minutes."
  }
}

variable "fleet_start" {
  description = "First reading time of the fleet, HES format YYYY-MM-DD HH:MM:SS.ffffff (MF_HES_FLEET_START)."
  type        = string
  default     = "2023-01-01 00:00:00.000000"

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}$", var.fleet_start))
    error_message = "HES time format: YYYY-MM-DD HH:MM:SS.ffffff."
  }
}

variable "fleet_seed" {
  description = "Seed of the simulated fleet: readings are a pure function of it (MF_HES_FLEET_SEED)."
  type        = number
  default     = 20230227

  validation {
    condition     = var.fleet_seed >= 0 && floor(var.fleet_seed) == var.fleet_seed
    error_message = "A non-negative whole number."
  }
}

variable "fleet_late_fraction" {
  description = "Fraction of readings that arrive late (MF_HES_FLEET_LATE_FRACTION)."
  type        = number
  default     = 0.1

  validation {
    condition     = var.fleet_late_fraction >= 0 && var.fleet_late_fraction <= 1
    error_message = "A fraction from 0 to 1."
  }
}

variable "fleet_late_max_minutes" {
  description = "Maximum lateness of a late reading in minutes (MF_HES_FLEET_LATE_MAX_MINUTES)."
  type        = number
  default     = 1440

  validation {
    condition     = var.fleet_late_max_minutes >= 0 && floor(var.fleet_late_max_minutes) == var.fleet_late_max_minutes
    error_message = "A non-negative whole number of minutes."
  }
}

variable "fleet_missing_fraction" {
  description = "Fraction of readings that never arrive (MF_HES_FLEET_MISSING_FRACTION)."
  type        = number
  default     = 0.002

  validation {
    condition     = var.fleet_missing_fraction >= 0 && var.fleet_missing_fraction <= 1
    error_message = "A fraction from 0 to 1."
  }
}

variable "fleet_outage_rate" {
  description = "Outages per meter and day (MF_HES_FLEET_OUTAGE_RATE)."
  type        = number
  default     = 0.002

  validation {
    condition     = var.fleet_outage_rate >= 0
    error_message = "A non-negative rate."
  }
}

variable "export_chunk_records" {
  description = "Records per export chunk (MF_HES_EXPORT_CHUNK_RECORDS)."
  type        = number
  default     = 120000

  validation {
    condition     = var.export_chunk_records >= 1 && floor(var.export_chunk_records) == var.export_chunk_records
    error_message = "A whole number, at least 1."
  }
}

variable "export_max_chunks" {
  description = "Maximum chunks of one export; larger requests fail fast (MF_HES_EXPORT_MAX_CHUNKS)."
  type        = number
  default     = 1000

  validation {
    condition     = var.export_max_chunks >= 1 && floor(var.export_max_chunks) == var.export_max_chunks
    error_message = "A whole number, at least 1."
  }
}

variable "heartbeat_interval_seconds" {
  description = "How often a worker sends SendTaskHeartbeat while a job runs (MF_HEARTBEAT_INTERVAL_SECONDS); below the state machine's HeartbeatSeconds with room for misses."
  type        = number
  default     = 15

  validation {
    condition     = var.heartbeat_interval_seconds >= 1
    error_message = "At least 1 second."
  }
}

variable "fixed_now" {
  description = "Fixed \"now\" of the simulator, HES format (MF_FIXED_NOW), for reproducible demos; null = wall clock."
  type        = string
  default     = null

  validation {
    condition     = var.fixed_now == null || can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}$", var.fixed_now))
    error_message = "null, or HES time format YYYY-MM-DD HH:MM:SS.ffffff."
  }
}

# ---------------------------------------------------------------------------------------------
# Lake runtime settings (meterflow/lake/settings.py: MF_LAKE_LATE_THRESHOLD_MINUTES,
# MF_LAKE_RANGE_MIN_BYTES, MF_LAKE_MAX_RANGES, MF_LAKE_PARTITIONS_PER_GROUP; same defaults)
# ---------------------------------------------------------------------------------------------

variable "late_threshold_minutes" {
  description = "A reading that arrives more than this many minutes after its time is a late read (MF_LAKE_LATE_THRESHOLD_MINUTES)."
  type        = number
  default     = 60

  validation {
    condition     = var.late_threshold_minutes >= 0 && floor(var.late_threshold_minutes) == var.late_threshold_minutes
    error_message = "A non-negative whole number of minutes."
  }
}

variable "range_min_bytes" {
  description = "Smallest byte range the splitter cuts a file into (MF_LAKE_RANGE_MIN_BYTES)."
  type        = number
  default     = 16777216

  validation {
    condition     = var.range_min_bytes >= 1 && floor(var.range_min_bytes) == var.range_min_bytes
    error_message = "A whole number of bytes, at least 1."
  }
}

variable "max_ranges" {
  description = "Most byte ranges one file is split into (MF_LAKE_MAX_RANGES)."
  type        = number
  default     = 150

  validation {
    condition     = var.max_ranges >= 1 && floor(var.max_ranges) == var.max_ranges
    error_message = "A whole number, at least 1."
  }
}

variable "partitions_per_group" {
  description = "Partitions one compaction job merges (MF_LAKE_PARTITIONS_PER_GROUP)."
  type        = number
  default     = 24

  validation {
    condition     = var.partitions_per_group >= 1 && floor(var.partitions_per_group) == var.partitions_per_group
    error_message = "A whole number, at least 1."
  }
}

variable "query_timeout_seconds" {
  description = "How long GET /lake/queries waits for Athena before it stops the query and answers 504 (MF_LAKE_QUERY_TIMEOUT_SECONDS); below the API function's 28 s timeout, or the function would be killed first and the query left running."
  type        = number
  default     = 24

  validation {
    condition     = var.query_timeout_seconds > 0 && var.query_timeout_seconds <= 27
    error_message = "More than 0 and at most 27 seconds: the API function times out at 28 s."
  }
}

# ---------------------------------------------------------------------------------------------
# API and SFTP
# ---------------------------------------------------------------------------------------------

variable "api_throttling_burst_limit" {
  description = "Burst limit of every API method (requests)."
  type        = number
  default     = 100

  validation {
    condition     = var.api_throttling_burst_limit >= 0
    error_message = "Not negative."
  }
}

variable "api_throttling_rate_limit" {
  description = "Steady-state rate limit of every API method (requests per second)."
  type        = number
  default     = 50

  validation {
    condition     = var.api_throttling_rate_limit >= 0
    error_message = "Not negative."
  }
}

variable "api_execution_logging_level" {
  description = "API Gateway execution logging level: OFF, ERROR or INFO (needs the account's API Gateway CloudWatch role)."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["OFF", "ERROR", "INFO"], var.api_execution_logging_level)
    error_message = "OFF, ERROR or INFO."
  }
}

variable "create_api_gateway_cloudwatch_role" {
  description = "Create API Gateway's account-level CloudWatch Logs role (a per-region singleton); false when the account already has one."
  type        = bool
  default     = true
}

variable "sftp_security_policy_name" {
  description = "Transfer Family security policy of the SFTP server."
  type        = string
  default     = "TransferSecurityPolicy-2025-03"

  validation {
    condition     = startswith(var.sftp_security_policy_name, "TransferSecurityPolicy-")
    error_message = "A Transfer Family security policy name."
  }
}
