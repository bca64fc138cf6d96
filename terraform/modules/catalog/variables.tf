variable "database_name" {
  description = "Name of the Glue database (meterflow/localcloud/stack.py: <stack with '_' for '-'>_lake)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.database_name))
    error_message = "Glue database names (as Athena uses them) are 1-255 characters of a-z, 0-9 and '_'."
  }
}

variable "database_description" {
  description = "Description of the Glue database."
  type        = string
  default     = "Meterflow lake: the integrated zone's Parquet tables (partition projection, no crawlers)."
}

variable "bucket_name" {
  description = "Name of the integrated bucket, where the tables' objects live."
  type        = string
}

variable "tables" {
  description = "Tables by name (meterflow/lake/domain/catalog.py LAKE_TABLES): key prefix in the bucket (no slash at either end), columns (name, Glue type) and partition keys in path order (name, Glue type, projection type enum/integer/date and its settings: values for enum, range and digits for integer, range and format for date; null where unused)."
  type = map(object({
    prefix = string
    columns = list(object({
      name = string
      type = string
    }))
    partition_keys = list(object({
      name            = string
      type            = string
      projection_type = string
      values          = list(string)
      range           = list(string)
      digits          = number
      format          = string
    }))
  }))

  validation {
    condition     = alltrue([for name, table in var.tables : can(regex("^[a-z0-9_]{1,255}$", name)) && length(table.columns) > 0])
    error_message = "Table names are 1-255 characters of a-z 0-9 _, and every table has columns."
  }

  validation {
    condition     = alltrue([for table in values(var.tables) : length(table.prefix) > 0 && !startswith(table.prefix, "/") && !endswith(table.prefix, "/")])
    error_message = "Prefixes are not empty and have no slash at either end."
  }

  validation {
    condition = alltrue(flatten([for table in values(var.tables) : [
      for key in table.partition_keys :
      contains(["enum", "integer", "date"], key.projection_type)
      && (key.projection_type != "enum" || key.values != null)
      && (key.projection_type == "enum" || try(length(key.range), 0) == 2)
      && (key.projection_type != "date" || key.format != null)
    ]]))
    error_message = "Projections are enum (with values), integer (with a range of two bounds) or date (with a range of two bounds and a format)."
  }
}

variable "parquet_compression" {
  description = "Compression codec of the tables' Parquet files (meterflow/lake/domain/schema.py PARQUET_COMPRESSION), recorded as a table parameter."
  type        = string
  default     = "zstd"
}

variable "workgroup_name" {
  description = "Name of the Athena workgroup (meterflow/localcloud/stack.py: <stack>-lake)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,128}$", var.workgroup_name))
    error_message = "Workgroup names are 1-128 characters of A-Z a-z 0-9 . _ -."
  }
}

variable "results_bucket_name" {
  description = "Name of the bucket receiving the workgroup's query results."
  type        = string
}

variable "results_prefix" {
  description = "Key prefix of the query results in the results bucket (ends with '/')."
  type        = string
  default     = "results/"

  validation {
    condition     = endswith(var.results_prefix, "/") && !startswith(var.results_prefix, "/")
    error_message = "A prefix ends with '/' and does not start with one."
  }
}

variable "bytes_scanned_cutoff_per_query" {
  description = "Athena cancels a query of the workgroup that scans more bytes than this."
  type        = number

  validation {
    condition     = var.bytes_scanned_cutoff_per_query >= 10485760
    error_message = "Athena's minimum is 10485760 bytes (10 MB)."
  }
}

variable "engine_version" {
  description = "Athena engine version of the workgroup."
  type        = string
  default     = "Athena engine version 3"
}

variable "kms_key_arn" {
  description = "ARN of the stack's KMS key (SSE_KMS encryption of query results)."
  type        = string
}

variable "account_id" {
  description = "AWS account id that must own the results bucket (expected bucket owner)."
  type        = string
}

variable "force_destroy" {
  description = "Whether `terraform destroy` may delete the workgroup while it has saved queries or history."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the workgroup."
  type        = map(string)
  default     = {}
}
