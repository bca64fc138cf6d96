variable "late_reads_rule_name" {
  description = "Name of the late-reads rule on the default bus (meterflow/localcloud/stack.py: <stack>-late-reads)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,64}$", var.late_reads_rule_name))
    error_message = "Rule names are 1-64 characters of A-Z a-z 0-9 . _ -."
  }
}

variable "late_reads_event_source" {
  description = "Event source the late-reads rule matches (meterflow/localcloud/stack.py LAKE_EVENT_SOURCE)."
  type        = string
}

variable "late_reads_detail_type" {
  description = "Detail type the late-reads rule matches (meterflow/localcloud/stack.py LATE_READS_DETAIL_TYPE)."
  type        = string
}

variable "late_reads_queue_arn" {
  description = "ARN of the late-reads queue, the rule's target."
  type        = string
}

variable "late_reads_maximum_event_age_in_seconds" {
  description = "How long EventBridge retries delivering a late-reads event to the queue."
  type        = number
  default     = 86400

  validation {
    condition     = var.late_reads_maximum_event_age_in_seconds >= 60 && var.late_reads_maximum_event_age_in_seconds <= 86400
    error_message = "EventBridge accepts 60 to 86400 seconds."
  }
}

variable "late_reads_maximum_retry_attempts" {
  description = "How often EventBridge retries delivering a late-reads event to the queue."
  type        = number
  default     = 185

  validation {
    condition     = var.late_reads_maximum_retry_attempts >= 0 && var.late_reads_maximum_retry_attempts <= 185
    error_message = "EventBridge accepts 0 to 185 attempts."
  }
}

variable "scheduler_rule_name" {
  description = "Name of the input adapter schedule rule (meterflow/localcloud/stack.py ScheduleSpec: <stack>-input-adapter-scheduler)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,64}$", var.scheduler_rule_name))
    error_message = "Rule names are 1-64 characters of A-Z a-z 0-9 . _ -."
  }
}

variable "scheduler_rate_minutes" {
  description = "Minutes between two ticks of the input adapter scheduler."
  type        = number

  validation {
    condition     = var.scheduler_rate_minutes >= 1 && floor(var.scheduler_rate_minutes) == var.scheduler_rate_minutes
    error_message = "A whole number of minutes, at least 1."
  }
}

variable "scheduler_enabled" {
  description = "Whether the schedule is enabled."
  type        = bool
  default     = true
}

variable "scheduler_function_name" {
  description = "Name of the input adapter scheduler function (lambda permission)."
  type        = string
}

variable "scheduler_function_arn" {
  description = "ARN of the input adapter scheduler function (the schedule's target)."
  type        = string
}

variable "tags" {
  description = "Tags for the rules."
  type        = map(string)
  default     = {}
}
