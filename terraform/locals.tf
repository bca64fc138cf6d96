# Every name of the stack, derived from var.stack_name and the account id exactly as
# meterflow/localcloud/stack.py derives them (stack_spec). tests/deploy applies the stack to moto and fails
# when the names differ from what the local runtime creates. Keys match the StackSpec keys. The lake's Glue tables are in
# lake_tables.tf.

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  names = {
    buckets = {
      hes_exports = "${var.stack_name}-hes-exports-${local.account_id}"
      # landing/ (compressed, as received), uncompressed/ (being ingested), processed/ (archive)
      inbound = "${var.stack_name}-inbound-${local.account_id}"
      # readings/parquet/, weather/, topology/, staging/, manifests/, errors/
      integrated     = "${var.stack_name}-integrated-${local.account_id}"
      athena_results = "${var.stack_name}-athena-results-${local.account_id}"
    }
    queues = {
      file_requests        = "${var.stack_name}-file-requests"
      export_jobs          = "${var.stack_name}-export-jobs"
      lake_jobs            = "${var.stack_name}-lake-jobs"
      uncompressed_objects = "${var.stack_name}-uncompressed-objects"
      late_reads           = "${var.stack_name}-late-reads"
      # The on-premises bridge: its cloud-side jobs, site jobs to publish, and what sites publish
      # back (IoT rules).
      bridge_jobs   = "${var.stack_name}-bridge-jobs"
      site_dispatch = "${var.stack_name}-site-dispatch"
      site_messages = "${var.stack_name}-site-messages"
    }
    tables = {
      file_requests = "${var.stack_name}-file-requests"
      integrations  = "${var.stack_name}-integrations"
      lake_files    = "${var.stack_name}-lake-files"
      bridge_jobs   = "${var.stack_name}-bridge-jobs"
    }
    secrets = {
      sftp_private_key = "${var.stack_name}/sftp/private_key"
    }
    topics = {
      alerts = "${var.stack_name}-alerts"
    }
    state_machines = {
      hes_export    = "${var.stack_name}-hes-export"
      lake_ingest   = "${var.stack_name}-lake-ingest"
      input_adapter = "${var.stack_name}-input-adapter"
      # historian_backfill: one backfill from an on-premises historian, run by the site's worker.
      historian_backfill = "${var.stack_name}-historian-backfill"
    }
    event_rules = {
      late_reads = "${var.stack_name}-late-reads"
    }
    schedules = {
      input_adapter_scheduler = "${var.stack_name}-input-adapter-scheduler"
    }
    functions = {
      api                     = "${var.stack_name}-api"
      start_file_export       = "${var.stack_name}-start-file-export"
      export_worker           = "${var.stack_name}-export-worker"
      lake_worker             = "${var.stack_name}-lake-worker"
      start_file_ingest       = "${var.stack_name}-start-file-ingest"
      merge_late_reads        = "${var.stack_name}-merge-late-reads"
      input_adapter_scheduler = "${var.stack_name}-input-adapter-scheduler"
      bridge_worker           = "${var.stack_name}-bridge-worker"
      site_dispatcher         = "${var.stack_name}-site-dispatcher"
      site_messages           = "${var.stack_name}-site-messages"
    }
    # Glue names allow no '-': meterflow/localcloud/stack.py replaces it with '_'.
    glue_database    = "${replace(var.stack_name, "-", "_")}_lake"
    athena_workgroup = "${var.stack_name}-lake"
    rest_api         = "${var.stack_name}-api"
    image_repository = "${var.stack_name}/lambda"
    sftp_server      = "${var.stack_name}-sftp"
    kms_alias        = "alias/${var.stack_name}"
    # The on-premises bridge in IoT Core (regional, per account: prefixed like everything else).
    # Topic rule names allow no '-'.
    iot_thing_type    = "${var.stack_name}-onprem-worker"
    iot_worker_policy = "${var.stack_name}-onprem-worker"
    iot_rule_prefix   = "${replace(var.stack_name, "-", "_")}_site"
    log_groups = {
      state_machine = "/aws/vendedlogs/states/${var.stack_name}-hes-export"
      lake_ingest   = "/aws/vendedlogs/states/${var.stack_name}-lake-ingest"
      input_adapter = "/aws/vendedlogs/states/${var.stack_name}-input-adapter"
      api_access    = "/aws/apigateway/${var.stack_name}-api/access"
      sftp          = "/aws/transfer/${var.stack_name}-sftp"
      lambda        = "/aws/lambda/${var.stack_name}-*"
      # The on-premises bridge's workflow.
      historian_backfill = "/aws/vendedlogs/states/${var.stack_name}-historian-backfill"
    }
  }

  # ARNs that are known before the resources exist. Queue policies and the key policy name them,
  # which would be dependency cycles if they referred to the resources themselves.
  arns = {
    inbound_bucket  = "arn:${local.partition}:s3:::${local.names.buckets.inbound}"
    late_reads_rule = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${local.names.event_rules.late_reads}"
    queues          = { for key, name in local.names.queues : key => "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${name}" }
  }

  # Key prefixes of the lake buckets (meterflow/localcloud/stack.py comments, meterflow/lake/domain/schema.py).
  inbound_prefixes = {
    landing      = "landing/"
    uncompressed = "uncompressed/"
    processed    = "processed/"
  }
  integrated_staging_prefix = "staging/"
  athena_results_prefix     = "results/"
  # meterflow/bridge/domain/jobs.py HISTORIAN_PREFIX: sites PUT their exports there (presigned URLs).
  historian_upload_prefix = "${local.inbound_prefixes.uncompressed}historian/"

  # onprem_worker/contracts.py: topics are <root>/<tenant>/<worker>/<channel>; the cloud publishes
  # jobs and cancellations, a site publishes results, progress and heartbeats.
  site_topics = {
    root          = "meterflow"
    cloud_to_site = ["jobs", "cancel"]
    site_to_cloud = ["results", "progress", "heartbeats"]
  }

  # The longest lake job (stage, compact, transfer); the lake worker's Lambda timeout.
  lake_job_timeout_seconds = max(var.stage_timeout_seconds, var.compact_timeout_seconds, var.transfer_timeout_seconds)

  # meterflow/localcloud/stack.py QueueSpec: visibility timeouts and receive counts. The export-jobs and
  # lake-jobs visibility outlasts the longest job so a slow but healthy worker is not raced by a
  # second one. service_senders: AWS services allowed to send to the queue (queue policy).
  queues = {
    file_requests = {
      name                       = local.names.queues.file_requests
      visibility_timeout_seconds = 60
      max_receive_count          = 5
      service_senders            = []
    }
    export_jobs = {
      name                       = local.names.queues.export_jobs
      visibility_timeout_seconds = var.chunk_timeout_seconds + 60
      max_receive_count          = 3
      service_senders            = []
    }
    lake_jobs = {
      name                       = local.names.queues.lake_jobs
      visibility_timeout_seconds = local.lake_job_timeout_seconds + 60
      max_receive_count          = 3
      service_senders            = []
    }
    # S3 announces objects created under uncompressed/ in the inbound bucket.
    uncompressed_objects = {
      name                       = local.names.queues.uncompressed_objects
      visibility_timeout_seconds = 60
      max_receive_count          = 5
      service_senders            = [{ service = "s3.amazonaws.com", source_arn = local.arns.inbound_bucket }]
    }
    # The late-reads EventBridge rule forwards LateReadsStaged events.
    late_reads = {
      name                       = local.names.queues.late_reads
      visibility_timeout_seconds = 300
      max_receive_count          = 5
      service_senders            = [{ service = "events.amazonaws.com", source_arn = local.arns.late_reads_rule }]
    }
    # historian_backfill's cloud-side jobs (prepare the upload, verify it): seconds each.
    bridge_jobs = {
      name                       = local.names.queues.bridge_jobs
      visibility_timeout_seconds = 120
      max_receive_count          = 3
      service_senders            = []
    }
    # historian_backfill's RunOnSite sends site jobs (task tokens); the dispatcher only publishes
    # them, the site's work is waited for by the Task (meterflow/localcloud/stack.py BridgeTuning).
    site_dispatch = {
      name                       = local.names.queues.site_dispatch
      visibility_timeout_seconds = 60
      max_receive_count          = 5
      service_senders            = []
    }
    # What sites publish, put here by the IoT topic rules. They act through their own role (an IAM
    # principal of this account), so the queue policy admits no service.
    site_messages = {
      name                       = local.names.queues.site_messages
      visibility_timeout_seconds = 60
      max_receive_count          = 5
      service_senders            = []
    }
  }

  # meterflow/localcloud/stack.py TableSpec.
  tables = {
    file_requests = {
      name          = local.names.tables.file_requests
      hash_key      = "request_id"
      range_key     = null
      ttl_attribute = "expires_at"
    }
    integrations = {
      name          = local.names.tables.integrations
      hash_key      = "integration_id"
      range_key     = null
      ttl_attribute = null
    }
    lake_files = {
      name          = local.names.tables.lake_files
      hash_key      = "file_id"
      range_key     = null
      ttl_attribute = null
    }
    bridge_jobs = {
      name          = local.names.tables.bridge_jobs
      hash_key      = "job_id"
      range_key     = null
      ttl_attribute = "expires_at"
    }
  }

  # The Chalice app's routes (its Blueprints, chalice_app/chalicelib/*.py); tests/deploy compares both with the applied API.
  api_routes = [
    { method = "GET", path = "/readings" },
    { method = "GET", path = "/readings/file" },
    { method = "POST", path = "/readings/file" },
    { method = "GET", path = "/lake/queries/{name}" },
    { method = "POST", path = "/backfills" },
    { method = "GET", path = "/jobs/{job_id}" },
    { method = "POST", path = "/jobs/{job_id}/cancel" },
  ]

  # meterflow/hes/settings.py HesSettings.to_env() (MF_HES_*), meterflow/lake/settings.py
  # LakeSettings.to_env() (MF_LAKE_*) and meterflow/bridge/settings.py BridgeSettings.to_env()
  # (MF_BRIDGE_*), with the variables they share (meterflow/core/settings.py: MF_INBOUND_BUCKET,
  # MF_HEARTBEAT_INTERVAL_SECONDS, MF_FIXED_NOW), for every function. AWS_REGION is left out on
  # purpose: it is a reserved variable that the Lambda runtime sets itself (Lambda rejects it).
  lambda_environment = merge(
    {
      MF_HES_STACK_NAME               = var.stack_name
      MF_HES_FILE_REQUESTS_TABLE      = local.names.tables.file_requests
      MF_HES_FILE_REQUESTS_QUEUE_URL  = module.queues.queue_urls["file_requests"]
      MF_HES_EXPORT_JOBS_QUEUE_URL    = module.queues.queue_urls["export_jobs"]
      MF_HES_EXPORTS_BUCKET           = local.names.buckets.hes_exports
      MF_HES_EXPORT_STATE_MACHINE_ARN = module.workflows.state_machine_arn
      MF_HES_FLEET_METER_COUNT        = tostring(var.fleet_meter_count)
      MF_HES_FLEET_INTERVAL_MINUTES   = tostring(var.fleet_interval_minutes)
      MF_HES_FLEET_START              = var.fleet_start
      MF_HES_FLEET_SEED               = tostring(var.fleet_seed)
      MF_HES_FLEET_LATE_FRACTION      = tostring(var.fleet_late_fraction)
      MF_HES_FLEET_LATE_MAX_MINUTES   = tostring(var.fleet_late_max_minutes)
      MF_HES_FLEET_MISSING_FRACTION   = tostring(var.fleet_missing_fraction)
      MF_HES_FLEET_OUTAGE_RATE        = tostring(var.fleet_outage_rate)
      MF_HES_EXPORT_CHUNK_RECORDS     = tostring(var.export_chunk_records)
      MF_HES_EXPORT_MAX_CHUNKS        = tostring(var.export_max_chunks)
      MF_HEARTBEAT_INTERVAL_SECONDS   = tostring(var.heartbeat_interval_seconds)
    },
    # Read by chalice_app/chalicelib/*.py at import time for their on_sqs_message decorators. Those only
    # matter to `chalice deploy`; in this stack the triggers are our own event source mappings.
    {
      MF_HES_FILE_REQUESTS_QUEUE_NAME         = local.names.queues.file_requests
      MF_HES_EXPORT_JOBS_QUEUE_NAME           = local.names.queues.export_jobs
      MF_LAKE_JOBS_QUEUE_NAME                 = local.names.queues.lake_jobs
      MF_LAKE_UNCOMPRESSED_OBJECTS_QUEUE_NAME = local.names.queues.uncompressed_objects
      MF_LAKE_LATE_READS_QUEUE_NAME           = local.names.queues.late_reads
      MF_BRIDGE_JOBS_QUEUE_NAME               = local.names.queues.bridge_jobs
      MF_BRIDGE_SITE_DISPATCH_QUEUE_NAME      = local.names.queues.site_dispatch
      MF_BRIDGE_SITE_MESSAGES_QUEUE_NAME      = local.names.queues.site_messages
    },
    # The lake: buckets, workflows, tables and the query engine (Athena over the Glue catalog).
    {
      MF_INBOUND_BUCKET                       = local.names.buckets.inbound
      MF_LAKE_INTEGRATED_BUCKET               = local.names.buckets.integrated
      MF_LAKE_JOBS_QUEUE_URL                  = module.queues.queue_urls["lake_jobs"]
      MF_LAKE_INTEGRATIONS_TABLE              = local.names.tables.integrations
      MF_LAKE_FILES_TABLE                     = local.names.tables.lake_files
      MF_LAKE_INGEST_STATE_MACHINE_ARN        = module.workflows.lake_ingest_state_machine_arn
      MF_LAKE_INPUT_ADAPTER_STATE_MACHINE_ARN = module.workflows.input_adapter_state_machine_arn
      MF_LAKE_ALERTS_TOPIC_ARN                = module.alerts.topic_arn
      MF_LAKE_GLUE_DATABASE                   = local.names.glue_database
      MF_LAKE_ATHENA_WORKGROUP                = local.names.athena_workgroup
      MF_LAKE_QUERY_ENGINE                    = "athena"
      MF_LAKE_LATE_THRESHOLD_MINUTES          = tostring(var.late_threshold_minutes)
      MF_LAKE_RANGE_MIN_BYTES                 = tostring(var.range_min_bytes)
      MF_LAKE_MAX_RANGES                      = tostring(var.max_ranges)
      MF_LAKE_PARTITIONS_PER_GROUP            = tostring(var.partitions_per_group)
      MF_LAKE_QUERY_TIMEOUT_SECONDS           = tostring(var.query_timeout_seconds)
      # Read by chalice_app/chalicelib/lake.py at import time for its schedule decorator (chalice deploy
      # only); here the schedule is modules/events.
      MF_LAKE_SCHEDULER_RATE_MINUTES = tostring(var.scheduler_rate_minutes)
    },
    # The on-premises bridge: meterflow/bridge/settings.py BridgeSettings.to_env(). Site jobs and
    # cancellations are published through IoT Core's data plane (iot-data Publish on the ATS
    # endpoint); its MQTT settings only serve MF_BRIDGE_SITE_PUBLISH=mqtt (local brokers) and are
    # left out.
    {
      MF_BRIDGE_JOBS_TABLE                 = local.names.tables.bridge_jobs
      MF_BRIDGE_BACKFILL_STATE_MACHINE_ARN = module.workflows.historian_backfill_state_machine_arn
      MF_BRIDGE_SITE_PUBLISH               = "iot-data"
      MF_BRIDGE_IOT_DATA_ENDPOINT          = module.iot.data_endpoint
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
