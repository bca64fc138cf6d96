variable "tables" {
  description = "Tables by stack key (meterflow/localcloud/stack.py TableSpec): name, string hash key, optional string range key and optional TTL attribute (epoch seconds). Pass every attribute, null where unused."
  type = map(object({
    name          = string
    hash_key      = string
    range_key     = string
    ttl_attribute = string
  }))

  validation {
    condition     = alltrue([for table in values(var.tables) : can(regex("^[A-Za-z0-9_.-]{3,255}$", table.name))])
    error_message = "DynamoDB table names are 3-255 characters of A-Z a-z 0-9 _ . -."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key for table encryption."
  type        = string
}

variable "deletion_protection_enabled" {
  description = "Whether the tables refuse DeleteTable (turn off before destroying the stack)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for the tables."
  type        = map(string)
  default     = {}
}
