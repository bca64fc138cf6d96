variable "alarms" {
  description = "Alarms by name: what the alarm is about (description), and the metric it watches."
  type = map(object({
    description = string
    namespace   = string
    metric_name = string
    dimensions  = map(string)
    statistic   = string
  }))

  validation {
    condition     = alltrue([for alarm in values(var.alarms) : contains(["Sum", "Maximum"], alarm.statistic)])
    error_message = "Sum (events in the period) or Maximum (a level, such as visible messages)."
  }
}

variable "topic_arn" {
  description = "SNS topic every alarm notifies when it fires and when it clears."
  type        = string
}

variable "period_seconds" {
  description = "Period over which each alarm reads its metric; one breaching period fires it."
  type        = number

  validation {
    condition     = contains([60, 300, 900, 3600], var.period_seconds)
    error_message = "60, 300, 900 or 3600 seconds."
  }
}

variable "tags" {
  description = "Tags of the alarms (the provider's default_tags apply as well)."
  type        = map(string)
  default     = {}
}
