variable "server_name" {
  description = "Name tag of the server; prefix of its IAM roles."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_+=,.@-]{1,50}$", var.server_name))
    error_message = "1-50 characters valid in IAM role names (the roles add '-logging' and '-user')."
  }
}

variable "user_name" {
  description = "SFTP user name (seed 000: sftp-user)."
  type        = string
  default     = "sftp-user"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_@.-]{2,99}$", var.user_name))
    error_message = "Transfer Family user names are 3-100 characters of A-Z a-z 0-9 _ - . @, not starting with - . @."
  }
}

variable "bucket_name" {
  description = "Name of the exports bucket."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the exports bucket."
  type        = string
}

variable "home_prefix" {
  description = "Key prefix that is the user's logical home directory \"/\" (read-only)."
  type        = string
  default     = "exports/"

  validation {
    condition     = length(trimsuffix(var.home_prefix, "/")) > 0 && !startswith(var.home_prefix, "/")
    error_message = "A non-empty key prefix without a leading '/'."
  }
}

variable "secret_name" {
  description = "Name of the Secrets Manager secret holding the user's PEM private key (<stack>/sftp/private_key)."
  type        = string
}

variable "secret_description" {
  description = "Description of the private-key secret."
  type        = string
}

variable "secret_recovery_window_in_days" {
  description = "Days a deleted secret can be restored (0 deletes at once, which lets a stack be recreated under the same name)."
  type        = number
  default     = 7

  validation {
    condition     = var.secret_recovery_window_in_days == 0 || (var.secret_recovery_window_in_days >= 7 && var.secret_recovery_window_in_days <= 30)
    error_message = "0, or 7 to 30 days."
  }
}

variable "security_policy_name" {
  description = "Transfer Family security policy (SSH ciphers, KEX and MACs)."
  type        = string
  default     = "TransferSecurityPolicy-2025-03"

  validation {
    condition     = startswith(var.security_policy_name, "TransferSecurityPolicy-")
    error_message = "A Transfer Family security policy name."
  }
}

variable "kms_key_arn" {
  description = "ARN of the stack's KMS key (secret, log group, exported objects)."
  type        = string
}

variable "log_group_name" {
  description = "Name of the log group receiving the server's structured (JSON) logs."
  type        = string
}

variable "log_retention_in_days" {
  description = "Retention of the server's structured logs."
  type        = number
}

variable "account_id" {
  description = "AWS account id (confused-deputy condition of the roles, log ARNs)."
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
  description = "Tags for the server, user, roles, secret and log group."
  type        = map(string)
  default     = {}
}
