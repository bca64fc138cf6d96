variable "function_names" {
  description = "Function names by role: api (API Gateway proxy), start_file_export (file-requests consumer), export_worker (export-jobs consumer), lake_worker (lake-jobs consumer), start_file_ingest (uncompressed-objects consumer), merge_late_reads (late-reads consumer), input_adapter_scheduler (EventBridge schedule), bridge_worker (bridge-jobs consumer), site_dispatcher (site-dispatch consumer), site_messages (site-messages consumer)."
  type = object({
    api                     = string
    start_file_export       = string
    export_worker           = string
    lake_worker             = string
    start_file_ingest       = string
    merge_late_reads        = string
    input_adapter_scheduler = string
    bridge_worker           = string
    site_dispatcher         = string
    site_messages           = string
  })

  validation {
    condition     = alltrue([for name in values(var.function_names) : can(regex("^[A-Za-z0-9_-]{1,57}$", name))])
    error_message = "Function names are 1-57 characters of A-Z a-z 0-9 _ - (the role adds '-lambda' within IAM's 64)."
  }
}

variable "image_uri" {
  description = "URI of the Lambda container image every function runs, pinned by digest: <account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<digest> (`make image`, terraform/README.md)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$", var.image_uri))
    error_message = "lambda_image_uri must be an ECR image URI pinned by digest (<repository URL>@sha256:<64 hex digits>; `make image` prints it): a tag can move under a deployed function."
  }
}

variable "architecture" {
  description = "Instruction set of the image (the artifact's wheels are built for it)."
  type        = string
  default     = "x86_64"

  # `make package` builds the wheels and `make image` the image for x86_64 only: an arm64 function
  # would start an amd64 image and fail.
  validation {
    condition     = var.architecture == "x86_64"
    error_message = "x86_64: the image is built for it (make package, make image); arm64 needs an arm64 build first."
  }
}

variable "environment" {
  description = "Environment variables of every function (HesSettings, LakeSettings and BridgeSettings to_env() of meterflow/<feature>/settings.py, without the reserved AWS_REGION)."
  type        = map(string)
}

variable "region" {
  description = "AWS region of the stack (scopes kms:ViaService conditions)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the stack's KMS key (environment variables, queues, objects, log groups)."
  type        = string
}

variable "file_requests_table_arn" {
  description = "ARN of the file-requests table."
  type        = string
}

variable "file_requests_queue_arn" {
  description = "ARN of the file-requests queue (api sends, start_file_export consumes)."
  type        = string
}

variable "export_jobs_queue_arn" {
  description = "ARN of the export-jobs queue (export_worker consumes)."
  type        = string
}

variable "account_id" {
  description = "AWS account id (ARNs of the Glue catalog and the default event bus)."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"
}

variable "bucket_arn" {
  description = "ARN of the exports bucket."
  type        = string
}

variable "exports_prefix" {
  description = "Key prefix of finished export files."
  type        = string
}

variable "staging_prefix" {
  description = "Key prefix of chunk objects."
  type        = string
}

variable "state_machine_arn" {
  description = "ARN of the HES export state machine (start_file_export starts it)."
  type        = string
}

# -- lake ---------------------------------------------------------------------------------------

variable "lake_jobs_queue_arn" {
  description = "ARN of the lake-jobs queue (lake_worker consumes)."
  type        = string
}

variable "uncompressed_objects_queue_arn" {
  description = "ARN of the uncompressed-objects queue (start_file_ingest consumes)."
  type        = string
}

variable "late_reads_queue_arn" {
  description = "ARN of the late-reads queue (merge_late_reads consumes)."
  type        = string
}

variable "inbound_bucket_arn" {
  description = "ARN of the inbound bucket."
  type        = string
}

variable "inbound_uncompressed_prefix" {
  description = "Key prefix of uncompressed files being ingested in the inbound bucket."
  type        = string
  default     = "uncompressed/"
}

variable "integrated_bucket_arn" {
  description = "ARN of the integrated bucket (the lake's tables)."
  type        = string
}

variable "lake_table_prefixes" {
  description = "Key prefixes of the lake's Glue tables in the integrated bucket, without slashes at either end (the API reads them through Athena)."
  type        = list(string)

  validation {
    condition     = alltrue([for prefix in var.lake_table_prefixes : length(prefix) > 0 && !startswith(prefix, "/") && !endswith(prefix, "/")])
    error_message = "Non-empty prefixes without a leading or trailing '/'."
  }
}

variable "athena_results_bucket_arn" {
  description = "ARN of the Athena results bucket."
  type        = string
}

variable "athena_results_prefix" {
  description = "Key prefix of the lake workgroup's query results."
  type        = string
}

variable "athena_workgroup_arn" {
  description = "ARN of the lake's Athena workgroup (the API runs its queries there)."
  type        = string
}

variable "glue_database_name" {
  description = "Name of the lake's Glue database."
  type        = string
}

variable "integrations_table_arn" {
  description = "ARN of the integrations table."
  type        = string
}

variable "lake_files_table_arn" {
  description = "ARN of the lake-files table."
  type        = string
}

variable "lake_ingest_state_machine_arn" {
  description = "ARN of the lake-ingest state machine (start_file_ingest starts it)."
  type        = string
}

variable "input_adapter_state_machine_arn" {
  description = "ARN of the input-adapter state machine (input_adapter_scheduler starts it)."
  type        = string
}

variable "sftp_secret_arn" {
  description = "ARN of the secret holding the SFTP user's private key (the lake worker downloads HES files with it)."
  type        = string
}

# -- on-premises bridge -------------------------------------------------------------------------

variable "bridge_jobs_queue_arn" {
  description = "ARN of the bridge-jobs queue (bridge_worker consumes)."
  type        = string
}

variable "site_dispatch_queue_arn" {
  description = "ARN of the site-dispatch queue (site_dispatcher consumes)."
  type        = string
}

variable "site_messages_queue_arn" {
  description = "ARN of the site-messages queue (site_messages consumes)."
  type        = string
}

variable "bridge_jobs_table_arn" {
  description = "ARN of the bridge-jobs table."
  type        = string
}

variable "historian_backfill_state_machine_arn" {
  description = "ARN of the historian-backfill state machine (the API starts it)."
  type        = string
}

variable "historian_backfill_state_machine_name" {
  description = "Name of the historian-backfill state machine (the API stops its executions)."
  type        = string
}

variable "historian_upload_prefix" {
  description = "Key prefix of the sites' uploads in the inbound bucket (the bridge worker presigns PUTs there and verifies them)."
  type        = string
  default     = "uncompressed/historian/"

  validation {
    condition     = length(var.historian_upload_prefix) > 1 && endswith(var.historian_upload_prefix, "/") && !startswith(var.historian_upload_prefix, "/")
    error_message = "A non-empty key prefix ending in '/', without a leading '/'."
  }
}

variable "site_topic_root" {
  description = "First level of the bridge's MQTT topics (onprem_worker/contracts.py TOPIC_ROOT)."
  type        = string
  default     = "meterflow"

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.site_topic_root))
    error_message = "Lowercase letters, digits and '-' (no MQTT wildcards or separators)."
  }
}

# -- sizes and timeouts -------------------------------------------------------------------------

variable "api_timeout_seconds" {
  description = "Timeout of the API function (API Gateway gives up after 29 s)."
  type        = number
  default     = 28

  validation {
    condition     = var.api_timeout_seconds >= 1 && var.api_timeout_seconds <= 29
    error_message = "Between 1 and 29 seconds: API Gateway's integration timeout is 29 s."
  }
}

variable "api_memory_size" {
  description = "Memory of the API function in MB."
  type        = number
  default     = 1024

  validation {
    condition     = var.api_memory_size >= 128 && var.api_memory_size <= 10240
    error_message = "Lambda accepts 128-10240 MB."
  }
}

variable "start_file_export_timeout_seconds" {
  description = "Timeout of the start-file-export function; must not exceed the file-requests queue's visibility timeout (60 s)."
  type        = number
  default     = 30

  validation {
    condition     = var.start_file_export_timeout_seconds >= 1 && var.start_file_export_timeout_seconds <= 60
    error_message = "Between 1 and 60 seconds (the file-requests visibility timeout)."
  }
}

variable "start_file_export_memory_size" {
  description = "Memory of the start-file-export function in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.start_file_export_memory_size >= 128 && var.start_file_export_memory_size <= 10240
    error_message = "Lambda accepts 128-10240 MB."
  }
}

variable "export_worker_timeout_seconds" {
  description = "Timeout of the export worker (the stack passes chunk_timeout_seconds; the export-jobs visibility timeout is 60 s longer)."
  type        = number

  validation {
    condition     = var.export_worker_timeout_seconds >= 1 && var.export_worker_timeout_seconds <= 900
    error_message = "Lambda allows at most 900 seconds."
  }
}

variable "export_worker_memory_size" {
  description = "Memory of the export worker in MB (CPU scales with it; gzip is CPU-bound)."
  type        = number
  default     = 3008

  validation {
    condition     = var.export_worker_memory_size >= 128 && var.export_worker_memory_size <= 10240
    error_message = "Lambda accepts 128-10240 MB."
  }
}

variable "lake_worker_timeout_seconds" {
  description = "Timeout of the lake worker (the stack passes the longest lake job timeout; the lake-jobs visibility timeout is 60 s longer)."
  type        = number

  validation {
    condition     = var.lake_worker_timeout_seconds >= 1 && var.lake_worker_timeout_seconds <= 900
    error_message = "Lambda allows at most 900 seconds."
  }
}

variable "lake_worker_memory_size" {
  description = "Memory of the lake worker in MB."
  type        = number
  default     = 3008

  validation {
    condition     = var.lake_worker_memory_size >= 128 && var.lake_worker_memory_size <= 10240
    error_message = "Lambda accepts 128-10240 MB."
  }
}

variable "start_file_ingest_timeout_seconds" {
  description = "Timeout of the start-file-ingest function; must not exceed the uncompressed-objects queue's visibility timeout (60 s)."
  type        = number
  default     = 30

  validation {
    condition     = var.start_file_ingest_timeout_seconds >= 1 && var.start_file_ingest_timeout_seconds <= 60
    error_message = "Between 1 and 60 seconds (the uncompressed-objects visibility timeout)."
  }
}

variable "start_file_ingest_memory_size" {
  description = "Memory of the start-file-ingest function in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.start_file_ingest_memory_size >= 128 && var.start_file_ingest_memory_size <= 10240
    error_message = "Lambda accepts 128-10240 MB."
  }
}

variable "merge_late_reads_timeout_seconds" {
  description = "Timeout of the late-reads consumer; must not exceed the late-reads queue's visibility timeout (300 s)."
  type        = number
  default     = 240

  validation {
    condition     = var.merge_late_reads_timeout_seconds >= 1 && var.merge_late_reads_timeout_seconds <= 300
    error_message = "Between 1 and 300 seconds (the late-reads visibility timeout)."
  }
}

variable "merge_late_reads_memory_size" {
  description = "Memory of the late-reads consumer in MB (it rewrites whole partitions)."
  type        = number
  default     = 2048

  validation {
    condition     = var.merge_late_reads_memory_size >= 128 && var.merge_late_reads_memory_size <= 10240
    error_message = "Lambda accepts 128-10240 MB."
  }
}

variable "input_adapter_scheduler_timeout_seconds" {
  description = "Timeout of the input adapter scheduler."
  type        = number
  default     = 60

  validation {
    condition     = var.input_adapter_scheduler_timeout_seconds >= 1 && var.input_adapter_scheduler_timeout_seconds <= 900
    error_message = "Lambda allows at most 900 seconds."
  }
}

variable "input_adapter_scheduler_memory_size" {
  description = "Memory of the input adapter scheduler in MB (every function imports the whole app, pyarrow included)."
  type        = number
  default     = 512

  validation {
    condition     = var.input_adapter_scheduler_memory_size >= 128 && var.input_adapter_scheduler_memory_size <= 10240
    error_message = "Lambda accepts 128-10240 MB."
  }
}

variable "bridge_worker_timeout_seconds" {
  description = "Timeout of the bridge worker (prepare or verify one backfill upload); must not exceed the bridge-jobs queue's visibility timeout (120 s)."
  type        = number
  default     = 60

  validation {
    condition     = var.bridge_worker_timeout_seconds >= 1 && var.bridge_worker_timeout_seconds <= 120
    error_message = "Between 1 and 120 seconds (the bridge-jobs visibility timeout)."
  }
}

variable "bridge_worker_memory_size" {
  description = "Memory of the bridge worker in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.bridge_worker_memory_size >= 128 && var.bridge_worker_memory_size <= 10240
    error_message = "Lambda accepts 128-10240 MB."
  }
}

variable "site_dispatcher_timeout_seconds" {
  description = "Timeout of the site dispatcher (one IoT publish); must not exceed the site-dispatch queue's visibility timeout (60 s)."
  type        = number
  default     = 30

  validation {
    condition     = var.site_dispatcher_timeout_seconds >= 1 && var.site_dispatcher_timeout_seconds <= 60
    error_message = "Between 1 and 60 seconds (the site-dispatch visibility timeout)."
  }
}

variable "site_dispatcher_memory_size" {
  description = "Memory of the site dispatcher in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.site_dispatcher_memory_size >= 128 && var.site_dispatcher_memory_size <= 10240
    error_message = "Lambda accepts 128-10240 MB."
  }
}

variable "site_messages_timeout_seconds" {
  description = "Timeout of the site-messages handler; must not exceed the site-messages queue's visibility timeout (60 s)."
  type        = number
  default     = 30

  validation {
    condition     = var.site_messages_timeout_seconds >= 1 && var.site_messages_timeout_seconds <= 60
    error_message = "Between 1 and 60 seconds (the site-messages visibility timeout)."
  }
}

variable "site_messages_memory_size" {
  description = "Memory of the site-messages handler in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.site_messages_memory_size >= 128 && var.site_messages_memory_size <= 10240
    error_message = "Lambda accepts 128-10240 MB."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions per function; -1 leaves a function unreserved."
  type = object({
    api                     = number
    start_file_export       = number
    export_worker           = number
    lake_worker             = number
    start_file_ingest       = number
    merge_late_reads        = number
    input_adapter_scheduler = number
    bridge_worker           = number
    site_dispatcher         = number
    site_messages           = number
  })

  validation {
    condition     = alltrue([for value in values(var.reserved_concurrency) : value >= -1 && floor(value) == value])
    error_message = "Reserved concurrency is a whole number, -1 (unreserved) or more."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the functions' log groups."
  type        = number
}

variable "tags" {
  description = "Tags for the functions, roles and log groups."
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
