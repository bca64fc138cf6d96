variable "queues" {
  description = "Work queues by stack key (meterflow/localcloud/stack.py QueueSpec): name, visibility timeout, the receive count after which a message moves to the queue's DLQ, and the AWS services that may send to the queue from one source ARN each (service principal, e.g. s3.amazonaws.com, and the bucket or rule ARN; [] for none)."
  type = map(object({
    name                       = string
    visibility_timeout_seconds = number
    max_receive_count          = number
    service_senders = list(object({
      service    = string
      source_arn = string
    }))
  }))

  validation {
    condition = alltrue([
      for queue in values(var.queues) :
      can(regex("^[A-Za-z0-9_-]{1,76}$", queue.name))
      && queue.visibility_timeout_seconds >= 0 && queue.visibility_timeout_seconds <= 43200
      && queue.max_receive_count >= 1 && queue.max_receive_count <= 1000
      && alltrue([for sender in queue.service_senders : endswith(sender.service, ".amazonaws.com") && startswith(sender.source_arn, "arn:")])
    ])
    error_message = "Queue names are 1-76 characters of A-Z a-z 0-9 _ - (80 with '-dlq'), visibility timeouts 0-43200 s, max receive counts 1-1000; senders are service principals with a source ARN."
  }
}

variable "account_id" {
  description = "AWS account id: service senders must act for a resource of this account (aws:SourceAccount)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "The account id is 12 digits."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key for SQS server-side encryption."
  type        = string
}

variable "kms_data_key_reuse_period_seconds" {
  description = "How long SQS reuses a data key before calling KMS again."
  type        = number
  default     = 300

  validation {
    condition     = var.kms_data_key_reuse_period_seconds >= 60 && var.kms_data_key_reuse_period_seconds <= 86400
    error_message = "SQS accepts 60-86400 seconds."
  }
}

variable "message_retention_seconds" {
  description = "Retention of messages in the work queues."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "SQS accepts 60 s to 14 days."
  }
}

variable "dlq_message_retention_seconds" {
  description = "Retention of messages in the dead-letter queues (14 days, the SQS maximum, so nothing is lost before someone looks)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "SQS accepts 60 s to 14 days."
  }
}

variable "receive_wait_time_seconds" {
  description = "Long-polling wait of ReceiveMessage calls."
  type        = number
  default     = 20

  validation {
    condition     = var.receive_wait_time_seconds >= 0 && var.receive_wait_time_seconds <= 20
    error_message = "SQS accepts 0-20 seconds."
  }
}

variable "tags" {
  description = "Tags for the queues."
  type        = map(string)
  default     = {}
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
