variable "bucket_name" {
  description = "Name of the exports bucket (globally unique: the stack derives it from the stack name and account id)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "S3 bucket names are 3-63 characters of a-z, 0-9, '.' and '-'."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key for default bucket encryption (SSE-KMS with a bucket key)."
  type        = string
}

variable "exports_prefix" {
  description = "Key prefix of finished export files (the SFTP user's home)."
  type        = string
  default     = "exports/"

  validation {
    condition     = endswith(var.exports_prefix, "/") && !startswith(var.exports_prefix, "/")
    error_message = "A prefix ends with '/' and does not start with one."
  }
}

variable "staging_prefix" {
  description = "Key prefix of the chunk objects of running exports."
  type        = string
  default     = "staging/"

  validation {
    condition     = endswith(var.staging_prefix, "/") && !startswith(var.staging_prefix, "/")
    error_message = "A prefix ends with '/' and does not start with one."
  }
}

variable "staging_expiration_days" {
  description = "Days after which chunk objects under the staging prefix expire."
  type        = number
  default     = 1

  validation {
    condition     = var.staging_expiration_days >= 1 && floor(var.staging_expiration_days) == var.staging_expiration_days
    error_message = "Expiration is a whole number of days, at least 1."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which incomplete multipart uploads are aborted."
  type        = number
  default     = 1

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1
    error_message = "At least one day."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent versions of export files are deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "At least one day."
  }
}

variable "access_logs_bucket_name" {
  description = "Existing bucket that receives S3 server access logs of the exports bucket and the lake buckets (prefix <bucket name>/); null disables access logging."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Whether `terraform destroy` may delete the buckets (exports and lake) while they still hold objects."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the buckets."
  type        = map(string)
  default     = {}
}

variable "lake_buckets" {
  description = "Lake buckets by stack key (meterflow/localcloud/stack.py BucketSpec), each with the same protections as the exports bucket: name, days after which noncurrent versions are deleted (whole bucket), lifecycle rules by prefix (expiration and/or one transition, null where unused) and S3 -> SQS notifications for objects created under a prefix."
  type = map(object({
    name                               = string
    noncurrent_version_expiration_days = number
    lifecycle_rules = list(object({
      id                       = string
      prefix                   = string
      expiration_days          = number
      transition_days          = number
      transition_storage_class = string
    }))
    queue_notifications = list(object({
      id        = string
      prefix    = string
      queue_arn = string
    }))
  }))
  default = {}

  validation {
    condition = alltrue([
      for bucket in values(var.lake_buckets) :
      can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket.name))
      && bucket.noncurrent_version_expiration_days >= 1
      && alltrue([for rule in bucket.lifecycle_rules : endswith(rule.prefix, "/") && !startswith(rule.prefix, "/")])
      && alltrue([for notification in bucket.queue_notifications : endswith(notification.prefix, "/") && !startswith(notification.prefix, "/")])
    ])
    error_message = "Bucket names are 3-63 characters of a-z, 0-9, '.' and '-'; noncurrent versions live at least a day; prefixes end with '/' and do not start with one."
  }
}
