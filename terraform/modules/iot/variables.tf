variable "thing_type_name" {
  description = "Name of the thing type of the on-premises workers (<stack>-onprem-worker)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9:_-]{1,128}$", var.thing_type_name))
    error_message = "Thing type names are 1-128 characters of A-Z a-z 0-9 : _ -."
  }
}

variable "policy_name" {
  description = "Name of the IoT policy attached to every worker certificate (<stack>-onprem-worker)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_+=,.@-]{1,128}$", var.policy_name))
    error_message = "IoT policy names are 1-128 characters of A-Z a-z 0-9 _ + = , . @ -."
  }
}

variable "rule_name_prefix" {
  description = "Prefix of the topic rule names; each rule is <prefix>_<channel> (IoT rule names allow letters, digits and '_' only)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,100}$", var.rule_name_prefix))
    error_message = "1-100 characters of A-Z a-z 0-9 _ (no '-': IoT rule names do not allow it)."
  }
}

variable "rule_role_name" {
  description = "Name of the IAM role the topic rules act with."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_+=,.@-]{1,64}$", var.rule_role_name))
    error_message = "IAM role names are 1-64 characters of A-Z a-z 0-9 _ + = , . @ -."
  }
}

variable "topic_root" {
  description = "First level of every bridge topic (onprem_worker/contracts.py TOPIC_ROOT)."
  type        = string
  default     = "meterflow"

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.topic_root))
    error_message = "Lowercase letters, digits and '-' (no MQTT wildcards or separators)."
  }
}

variable "cloud_to_site_channels" {
  description = "Channels the cloud publishes and a worker subscribes to (onprem_worker/contracts.py CLOUD_TO_SITE)."
  type        = list(string)
  default     = ["jobs", "cancel"]

  validation {
    condition     = length(var.cloud_to_site_channels) > 0 && alltrue([for channel in var.cloud_to_site_channels : can(regex("^[a-z]+$", channel))])
    error_message = "At least one channel, each lowercase letters only."
  }
}

variable "site_to_cloud_channels" {
  description = "Channels a worker publishes on, one topic rule each (onprem_worker/contracts.py SITE_TO_CLOUD)."
  type        = list(string)
  default     = ["results", "progress", "heartbeats"]

  validation {
    condition     = length(var.site_to_cloud_channels) > 0 && alltrue([for channel in var.site_to_cloud_channels : can(regex("^[a-z]+$", channel))])
    error_message = "At least one channel, each lowercase letters only."
  }
}

variable "site_messages_queue_url" {
  description = "URL of the site-messages queue (the rules' SQS action)."
  type        = string
}

variable "site_messages_queue_arn" {
  description = "ARN of the site-messages queue (the rules' role may send to it)."
  type        = string
}

variable "error_queue_url" {
  description = "URL of the queue receiving the rules' error messages (the site-messages DLQ)."
  type        = string
}

variable "error_queue_arn" {
  description = "ARN of the queue receiving the rules' error messages (the rules' role may send to it)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the stack's KMS key, with which both queues are encrypted."
  type        = string
}

variable "account_id" {
  description = "AWS account id (IoT resource ARNs, the rules' role trust policy)."
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

variable "tags" {
  description = "Tags for the thing type, the policy, the rules and their role."
  type        = map(string)
  default     = {}
}
