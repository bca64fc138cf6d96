variable "name" {
  description = "Name of the state machine (meterflow/stack.py: <stack>-hes-export)."
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
  description = "Name of the CloudWatch log group of the state machine's execution history."
  type        = string
}

variable "log_retention_in_days" {
  description = "Retention of the state machine's logs."
  type        = number
}

variable "tags" {
  description = "Tags for the state machine, its role and its log group."
  type        = map(string)
  default     = {}
}
