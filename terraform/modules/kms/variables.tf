variable "alias" {
  description = "Alias of the key, including the `alias/` prefix."
  type        = string

  validation {
    condition     = can(regex("^alias/[A-Za-z0-9/_-]+$", var.alias)) && !startswith(var.alias, "alias/aws/")
    error_message = "The alias must start with alias/, use only A-Z a-z 0-9 / _ - and not start with alias/aws/."
  }
}

variable "description" {
  description = "Description of the key."
  type        = string
}

variable "account_id" {
  description = "AWS account id that owns the key (its root principal administers it through IAM)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "The account id is 12 digits."
  }
}

variable "region" {
  description = "Region of the key; names the CloudWatch Logs service principal."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"
}

variable "log_group_names" {
  description = "Names of the CloudWatch log groups that may be encrypted with this key (wildcards allowed)."
  type        = list(string)
}

variable "queue_service_senders" {
  description = "AWS services that send to queues encrypted with this key as themselves (S3 event notifications, EventBridge targets), by key-policy statement id: the service principal and the ARNs of the queues it may send to."
  type = map(object({
    service    = string
    queue_arns = list(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for sid, sender in var.queue_service_senders : can(regex("^[A-Za-z0-9]+$", sid)) && endswith(sender.service, ".amazonaws.com")])
    error_message = "Statement ids are alphanumeric; services are service principals (*.amazonaws.com)."
  }
}

variable "administrator_arns" {
  description = "IAM principals allowed to administer (not use) the key, in addition to IAM policies of the account."
  type        = list(string)
  default     = []
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled key deletion completes."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "KMS accepts a deletion window of 7 to 30 days."
  }
}

variable "rotation_period_in_days" {
  description = "Automatic key rotation period."
  type        = number
  default     = 365

  validation {
    condition     = var.rotation_period_in_days >= 90 && var.rotation_period_in_days <= 2560
    error_message = "KMS accepts a rotation period of 90 to 2560 days."
  }
}

variable "tags" {
  description = "Tags for the key."
  type        = map(string)
  default     = {}
}

variable "alarm_topic_arns" {
  description = "SNS topics (encrypted with this key) that CloudWatch alarms publish to."
  type        = list(string)
}
