variable "repository_name" {
  description = "Name of the repository (<stack>/lambda)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.repository_name)) && length(var.repository_name) <= 256
    error_message = "ECR repository names are lower-case path components of a-z 0-9 . _ - (at most 256 characters)."
  }
}

variable "kms_key_arn" {
  description = "ARN of the stack's KMS key (encryption of the images at rest)."
  type        = string
}

variable "image_retention_count" {
  description = "How many images the repository keeps; older ones expire."
  type        = number
}

variable "force_delete" {
  description = "Whether `terraform destroy` may delete the repository while it holds images."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags of the repository (the provider's default_tags apply as well)."
  type        = map(string)
  default     = {}
}

variable "account_id" {
  description = "AWS account id of the functions that may pull the image."
  type        = string
}

variable "region" {
  description = "AWS region of the functions that may pull the image."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
}
