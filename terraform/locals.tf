# Every name of the stack, derived from var.stack_name and the account id exactly as
# meterflow/stack.py derives them (stack_spec). tests/static/test_drift.py evaluates this map and
# fails when the two disagree. Keys match the StackSpec keys.

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  names = {
    buckets = {
      hes_exports = "${var.stack_name}-hes-exports-${local.account_id}"
    }
    queues = {
      file_requests = "${var.stack_name}-file-requests"
      export_jobs   = "${var.stack_name}-export-jobs"
    }
    tables = {
      file_requests = "${var.stack_name}-file-requests"
    }
    secrets = {
      sftp_private_key = "${var.stack_name}/sftp/private_key"
    }
    state_machines = {
      hes_export = "${var.stack_name}-hes-export"
    }
    functions = {
      api               = "${var.stack_name}-api"
      start_file_export = "${var.stack_name}-start-file-export"
      export_worker     = "${var.stack_name}-export-worker"
    }
    rest_api    = "${var.stack_name}-api"
    sftp_server = "${var.stack_name}-sftp"
    kms_alias   = "alias/${var.stack_name}"
    log_groups = {
      state_machine = "/aws/vendedlogs/states/${var.stack_name}-hes-export"
      api_access    = "/aws/apigateway/${var.stack_name}-api/access"
      sftp          = "/aws/transfer/${var.stack_name}-sftp"
      lambda        = "/aws/lambda/${var.stack_name}-*"
    }
  }

  # meterflow/stack.py QueueSpec: visibility timeouts and receive counts. The export-jobs visibility
  # outlasts a chunk job so a slow but healthy worker is not raced by a second one.
  queues = {
    file_requests = {
      name                       = local.names.queues.file_requests
      visibility_timeout_seconds = 60
      max_receive_count          = 5
    }
    export_jobs = {
      name                       = local.names.queues.export_jobs
      visibility_timeout_seconds = var.chunk_timeout_seconds + 60
      max_receive_count          = 3
    }
  }

  # meterflow/stack.py TableSpec.
  tables = {
    file_requests = {
      name          = local.names.tables.file_requests
      hash_key      = "request_id"
      range_key     = null
      ttl_attribute = "expires_at"
    }
  }

  # The Chalice app's routes (chalice_app/app.py); test_drift.py compares both with this list.
  api_routes = [
    { method = "GET", path = "/readings" },
    { method = "GET", path = "/readings/file" },
    { method = "POST", path = "/readings/file" },
  ]

  # meterflow/settings.py Settings.to_env(), for every function. AWS_REGION is left out on purpose:
  # it is a reserved variable that the Lambda runtime sets itself (Lambda rejects it).
  lambda_environment = merge(
    {
      MF_STACK_NAME                 = var.stack_name
      MF_FILE_REQUESTS_TABLE        = local.names.tables.file_requests
      MF_FILE_REQUESTS_QUEUE_URL    = module.queues.queue_urls["file_requests"]
      MF_EXPORT_JOBS_QUEUE_URL      = module.queues.queue_urls["export_jobs"]
      MF_EXPORTS_BUCKET             = local.names.buckets.hes_exports
      MF_EXPORT_STATE_MACHINE_ARN   = module.workflows.state_machine_arn
      MF_FLEET_METER_COUNT          = tostring(var.fleet_meter_count)
      MF_FLEET_INTERVAL_MINUTES     = tostring(var.fleet_interval_minutes)
      MF_FLEET_START                = var.fleet_start
      MF_FLEET_SEED                 = tostring(var.fleet_seed)
      MF_FLEET_LATE_FRACTION        = tostring(var.fleet_late_fraction)
      MF_FLEET_LATE_MAX_MINUTES     = tostring(var.fleet_late_max_minutes)
      MF_FLEET_MISSING_FRACTION     = tostring(var.fleet_missing_fraction)
      MF_FLEET_OUTAGE_RATE          = tostring(var.fleet_outage_rate)
      MF_EXPORT_CHUNK_RECORDS       = tostring(var.export_chunk_records)
      MF_EXPORT_MAX_CHUNKS          = tostring(var.export_max_chunks)
      MF_HEARTBEAT_INTERVAL_SECONDS = tostring(var.heartbeat_interval_seconds)
    },
    # Read by chalice_app/app.py at import time for its @app.on_sqs_message decorators. Those only
    # matter to `chalice deploy`; in this stack the triggers are our own event source mappings.
    {
      MF_FILE_REQUESTS_QUEUE_NAME = local.names.queues.file_requests
      MF_EXPORT_JOBS_QUEUE_NAME   = local.names.queues.export_jobs
    },
    var.fixed_now == null ? {} : { MF_FIXED_NOW = var.fixed_now },
  )

  tags = merge(
    {
      Project   = "meterflow"
      Stack     = var.stack_name
      ManagedBy = "terraform"
    },
    var.tags,
  )
}
