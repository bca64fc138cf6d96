variable "name" {
  description = "Name of the topic (meterflow/localcloud/stack.py TopicSpec: <stack>-alerts)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,256}$", var.name))
    error_message = "Topic names are 1-256 characters of A-Z a-z 0-9 _ -."
  }
}

variable "display_name" {
  description = "Display name of the topic (the sender name of e-mail notifications)."
  type        = string
  default     = "Meterflow alerts"
}

variable "kms_key_arn" {
  description = "ARN of the stack's KMS key (server-side encryption of the topic)."
  type        = string
}

variable "email_addresses" {
  description = "E-mail addresses to subscribe to the topic; each recipient must confirm. Empty = no subscription."
  type        = list(string)
  default     = []
}

variable "account_id" {
  description = "AWS account id that owns the topic (its IAM policies govern access)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "The account id is 12 digits."
  }
}

variable "region" {
  description = "AWS region of the topic."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"
}

variable "tags" {
  description = "Tags for the topic."
  type        = map(string)
  default     = {}
}

variable "alarm_name_prefix" {
  description = "Prefix of the names of the CloudWatch alarms that may publish to the topic (<stack>-)."
  type        = string
}
