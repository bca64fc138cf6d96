# Meterflow on AWS: the resources of meterflow/localcloud/stack.py (buckets, queues + DLQs, tables, secret,
# topic, state machines, event rule and schedule, Glue database and Athena workgroup) plus what runs
# on them (Lambda functions from the Chalice zip, REST API, SFTP) and the IoT Core side of the
# on-premises bridge (thing type, worker policy, topic rules).

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

module "kms" {
  source = "./modules/kms"

  alias                   = local.names.kms_alias
  description             = "Meterflow ${var.stack_name}: S3, SQS, DynamoDB, SNS, Secrets Manager, Athena results, Lambda environment and CloudWatch Logs"
  account_id              = local.account_id
  region                  = local.region
  partition               = local.partition
  log_group_names         = values(local.names.log_groups)
  administrator_arns      = var.kms_key_administrator_arns
  deletion_window_in_days = var.kms_deletion_window_in_days
  # Known before the topic exists (the topic is encrypted with this key).
  alarm_topic_arns = ["arn:${local.partition}:sns:${local.region}:${local.account_id}:${local.names.topics.alerts}"]

  # The queues whose policies admit an AWS service (local.queues service_senders).
  queue_service_senders = {
    S3EventNotificationsToQueues = {
      service    = "s3.amazonaws.com"
      queue_arns = [local.arns.queues.uncompressed_objects]
    }
    EventBridgeRulesToQueues = {
      service    = "events.amazonaws.com"
      queue_arns = [local.arns.queues.late_reads]
    }
  }
}

module "storage" {
  source = "./modules/storage"

  bucket_name             = local.names.buckets.hes_exports
  kms_key_arn             = module.kms.key_arn
  exports_prefix          = "exports/"
  staging_prefix          = "staging/"
  staging_expiration_days = 1
  access_logs_bucket_name = var.access_logs_bucket_name
  force_destroy           = var.force_destroy_bucket

  lake_buckets = {
    inbound = {
      name                               = local.names.buckets.inbound
      noncurrent_version_expiration_days = 7
      lifecycle_rules = [
        {
          id                       = "archive-processed"
          prefix                   = local.inbound_prefixes.processed
          expiration_days          = null
          transition_days          = var.inbound_processed_transition_days
          transition_storage_class = "GLACIER_IR"
        },
        {
          id                       = "expire-landing"
          prefix                   = local.inbound_prefixes.landing
          expiration_days          = var.inbound_transient_expiration_days
          transition_days          = null
          transition_storage_class = null
        },
        {
          id                       = "expire-uncompressed"
          prefix                   = local.inbound_prefixes.uncompressed
          expiration_days          = var.inbound_transient_expiration_days
          transition_days          = null
          transition_storage_class = null
        },
      ]
      # meterflow/localcloud/stack.py BucketNotificationSpec: uncompressed files start the lake-ingest workflow.
      queue_notifications = [
        {
          id        = "uncompressed-objects"
          prefix    = local.inbound_prefixes.uncompressed
          queue_arn = module.queues.policy_attached_queue_arns["uncompressed_objects"]
        },
      ]
    }
    integrated = {
      name                               = local.names.buckets.integrated
      noncurrent_version_expiration_days = var.integrated_noncurrent_version_expiration_days
      lifecycle_rules = [
        {
          id                       = "expire-staging"
          prefix                   = local.integrated_staging_prefix
          expiration_days          = var.integrated_staging_expiration_days
          transition_days          = null
          transition_storage_class = null
        },
      ]
      queue_notifications = []
    }
    athena_results = {
      name                               = local.names.buckets.athena_results
      noncurrent_version_expiration_days = 1
      lifecycle_rules = [
        {
          id                       = "expire-results"
          prefix                   = local.athena_results_prefix
          expiration_days          = var.athena_results_expiration_days
          transition_days          = null
          transition_storage_class = null
        },
      ]
      queue_notifications = []
    }
  }
}

module "queues" {
  source = "./modules/queues"

  queues                        = local.queues
  dlq_message_retention_seconds = 1209600
  kms_key_arn                   = module.kms.key_arn
  account_id                    = local.account_id
  alarm_topic_arn               = module.alerts.topic_arn
  alarm_period_seconds          = var.alarm_period_seconds
}

module "tables" {
  source = "./modules/tables"

  tables                      = local.tables
  kms_key_arn                 = module.kms.key_arn
  deletion_protection_enabled = var.table_deletion_protection
}

module "alerts" {
  source = "./modules/alerts"

  name            = local.names.topics.alerts
  kms_key_arn     = module.kms.key_arn
  email_addresses = var.alert_email_addresses
  # The alarms of modules/queues, workflows and functions are named <stack>-...
  alarm_name_prefix = "${var.stack_name}-"
  account_id        = local.account_id
  region            = local.region
  partition         = local.partition
}

module "workflows" {
  source = "./modules/workflows"

  name                       = local.names.state_machines.hes_export
  account_id                 = local.account_id
  region                     = local.region
  partition                  = local.partition
  export_jobs_queue_url      = module.queues.queue_urls["export_jobs"]
  export_jobs_queue_arn      = module.queues.queue_arns["export_jobs"]
  file_requests_table_name   = local.names.tables.file_requests
  file_requests_table_arn    = module.tables.table_arns["file_requests"]
  kms_key_arn                = module.kms.key_arn
  max_concurrency            = var.export_max_concurrency
  plan_timeout_seconds       = var.plan_timeout_seconds
  chunk_timeout_seconds      = var.chunk_timeout_seconds
  chunk_heartbeat_seconds    = var.chunk_heartbeat_seconds
  finalize_timeout_seconds   = var.finalize_timeout_seconds
  finalize_heartbeat_seconds = var.finalize_heartbeat_seconds
  worker_heartbeat_seconds   = var.heartbeat_interval_seconds
  log_group_name             = local.names.log_groups.state_machine
  log_retention_in_days      = var.log_retention_in_days
  alarm_topic_arn            = module.alerts.topic_arn
  alarm_period_seconds       = var.alarm_period_seconds

  # Lake workflows (meterflow/localcloud/stack.py lake_ingest and input_adapter).
  lake_ingest_name             = local.names.state_machines.lake_ingest
  input_adapter_name           = local.names.state_machines.input_adapter
  lake_ingest_log_group_name   = local.names.log_groups.lake_ingest
  input_adapter_log_group_name = local.names.log_groups.input_adapter
  lake_jobs_queue_url          = module.queues.queue_urls["lake_jobs"]
  lake_jobs_queue_arn          = module.queues.queue_arns["lake_jobs"]
  lake_files_table_name        = local.names.tables.lake_files
  lake_files_table_arn         = module.tables.table_arns["lake_files"]
  integrations_table_name      = local.names.tables.integrations
  integrations_table_arn       = module.tables.table_arns["integrations"]
  alerts_topic_arn             = module.alerts.topic_arn
  inbound_bucket_name          = local.names.buckets.inbound
  inbound_bucket_arn           = module.storage.lake_bucket_arns["inbound"]
  inbound_landing_prefix       = local.inbound_prefixes.landing
  inbound_uncompressed_prefix  = local.inbound_prefixes.uncompressed
  inbound_processed_prefix     = local.inbound_prefixes.processed

  lake_tuning = {
    range_max_concurrency        = var.range_max_concurrency
    compact_max_concurrency      = var.compact_max_concurrency
    split_timeout_seconds        = var.split_timeout_seconds
    stage_timeout_seconds        = var.stage_timeout_seconds
    stage_heartbeat_seconds      = var.stage_heartbeat_seconds
    compact_timeout_seconds      = var.compact_timeout_seconds
    compact_heartbeat_seconds    = var.compact_heartbeat_seconds
    finalize_timeout_seconds     = var.lake_finalize_timeout_seconds
    hes_job_timeout_seconds      = var.hes_job_timeout_seconds
    transfer_timeout_seconds     = var.transfer_timeout_seconds
    transfer_heartbeat_seconds   = var.transfer_heartbeat_seconds
    hes_poll_interval_seconds    = var.hes_poll_interval_seconds
    hes_poll_max_attempts        = var.hes_poll_max_attempts
    ingest_poll_interval_seconds = var.ingest_poll_interval_seconds
    ingest_poll_max_attempts     = var.ingest_poll_max_attempts
  }

  # On-premises bridge (meterflow/localcloud/stack.py historian_backfill).
  historian_backfill_name           = local.names.state_machines.historian_backfill
  historian_backfill_log_group_name = local.names.log_groups.historian_backfill
  bridge_jobs_queue_url             = module.queues.queue_urls["bridge_jobs"]
  bridge_jobs_queue_arn             = module.queues.queue_arns["bridge_jobs"]
  site_dispatch_queue_url           = module.queues.queue_urls["site_dispatch"]
  site_dispatch_queue_arn           = module.queues.queue_arns["site_dispatch"]
  bridge_jobs_table_name            = local.names.tables.bridge_jobs
  bridge_jobs_table_arn             = module.tables.table_arns["bridge_jobs"]

  bridge_tuning = {
    site_timeout_seconds        = var.site_timeout_seconds
    site_heartbeat_seconds      = var.site_heartbeat_seconds
    site_retry_interval_seconds = var.site_retry_interval_seconds
    site_max_attempts           = var.site_max_attempts
  }
}

# The repository of the functions' container image: created first (terraform apply
# -target=module.registry), then `make image` pushes to it, then the whole stack is applied.
module "registry" {
  source = "./modules/registry"

  repository_name       = local.names.image_repository
  kms_key_arn           = module.kms.key_arn
  image_retention_count = var.lambda_image_retention_count
  force_delete          = var.force_destroy_bucket
  account_id            = local.account_id
  region                = local.region
  partition             = local.partition
}

module "catalog" {
  source = "./modules/catalog"

  database_name                  = local.names.glue_database
  bucket_name                    = local.names.buckets.integrated
  tables                         = local.lake_tables
  workgroup_name                 = local.names.athena_workgroup
  results_bucket_name            = local.names.buckets.athena_results
  results_prefix                 = local.athena_results_prefix
  bytes_scanned_cutoff_per_query = var.athena_bytes_scanned_cutoff_per_query
  kms_key_arn                    = module.kms.key_arn
  account_id                     = local.account_id
  force_destroy                  = var.force_destroy_bucket
}

module "functions" {
  source = "./modules/functions"

  function_names          = local.names.functions
  image_uri               = var.lambda_image_uri
  architecture            = var.lambda_architecture
  environment             = local.lambda_environment
  region                  = local.region
  kms_key_arn             = module.kms.key_arn
  file_requests_table_arn = module.tables.table_arns["file_requests"]
  file_requests_queue_arn = module.queues.queue_arns["file_requests"]
  export_jobs_queue_arn   = module.queues.queue_arns["export_jobs"]
  bucket_arn              = module.storage.bucket_arn
  exports_prefix          = module.storage.exports_prefix
  staging_prefix          = module.storage.staging_prefix
  state_machine_arn       = module.workflows.state_machine_arn
  account_id              = local.account_id
  partition               = local.partition

  # Lake
  lake_jobs_queue_arn             = module.queues.queue_arns["lake_jobs"]
  uncompressed_objects_queue_arn  = module.queues.queue_arns["uncompressed_objects"]
  late_reads_queue_arn            = module.queues.queue_arns["late_reads"]
  inbound_bucket_arn              = module.storage.lake_bucket_arns["inbound"]
  inbound_uncompressed_prefix     = local.inbound_prefixes.uncompressed
  integrated_bucket_arn           = module.storage.lake_bucket_arns["integrated"]
  lake_table_prefixes             = [for table in values(local.lake_tables) : table.prefix]
  athena_results_bucket_arn       = module.storage.lake_bucket_arns["athena_results"]
  athena_results_prefix           = local.athena_results_prefix
  athena_workgroup_arn            = module.catalog.workgroup_arn
  glue_database_name              = module.catalog.database_name
  integrations_table_arn          = module.tables.table_arns["integrations"]
  lake_files_table_arn            = module.tables.table_arns["lake_files"]
  lake_ingest_state_machine_arn   = module.workflows.lake_ingest_state_machine_arn
  input_adapter_state_machine_arn = module.workflows.input_adapter_state_machine_arn
  sftp_secret_arn                 = module.sftp.secret_arn

  # On-premises bridge
  bridge_jobs_queue_arn                 = module.queues.queue_arns["bridge_jobs"]
  site_dispatch_queue_arn               = module.queues.queue_arns["site_dispatch"]
  site_messages_queue_arn               = module.queues.queue_arns["site_messages"]
  bridge_jobs_table_arn                 = module.tables.table_arns["bridge_jobs"]
  historian_backfill_state_machine_arn  = module.workflows.historian_backfill_state_machine_arn
  historian_backfill_state_machine_name = local.names.state_machines.historian_backfill
  historian_upload_prefix               = local.historian_upload_prefix
  site_topic_root                       = local.site_topics.root

  # A chunk job may run for chunk_timeout_seconds; the export-jobs visibility timeout is 60 s longer.
  export_worker_timeout_seconds = var.chunk_timeout_seconds
  export_worker_memory_size     = var.export_worker_memory_size

  # Likewise the longest lake job and the lake-jobs queue.
  lake_worker_timeout_seconds = local.lake_job_timeout_seconds
  lake_worker_memory_size     = var.lake_worker_memory_size

  reserved_concurrency = {
    api                     = var.api_reserved_concurrency
    start_file_export       = var.start_file_export_reserved_concurrency
    export_worker           = var.export_worker_reserved_concurrency
    lake_worker             = var.lake_worker_reserved_concurrency
    start_file_ingest       = var.start_file_ingest_reserved_concurrency
    merge_late_reads        = var.merge_late_reads_reserved_concurrency
    input_adapter_scheduler = var.input_adapter_scheduler_reserved_concurrency
    bridge_worker           = var.bridge_worker_reserved_concurrency
    site_dispatcher         = var.site_dispatcher_reserved_concurrency
    site_messages           = var.site_messages_reserved_concurrency
  }

  log_retention_in_days = var.log_retention_in_days
  alarm_topic_arn       = module.alerts.topic_arn
  alarm_period_seconds  = var.alarm_period_seconds
}

# The on-premises bridge in IoT Core: what a site worker may do, and the rules that bring what it
# publishes to the site-messages queue (failed deliveries to that queue's DLQ).
module "iot" {
  source = "./modules/iot"

  thing_type_name         = local.names.iot_thing_type
  policy_name             = local.names.iot_worker_policy
  rule_name_prefix        = local.names.iot_rule_prefix
  rule_role_name          = "${local.names.queues.site_messages}-iot"
  topic_root              = local.site_topics.root
  cloud_to_site_channels  = local.site_topics.cloud_to_site
  site_to_cloud_channels  = local.site_topics.site_to_cloud
  site_messages_queue_url = module.queues.queue_urls["site_messages"]
  site_messages_queue_arn = module.queues.queue_arns["site_messages"]
  error_queue_url         = module.queues.dlq_urls["site_messages"]
  error_queue_arn         = module.queues.dlq_arns["site_messages"]
  kms_key_arn             = module.kms.key_arn
  account_id              = local.account_id
  region                  = local.region
  partition               = local.partition
}

module "events" {
  source = "./modules/events"

  late_reads_rule_name    = local.names.event_rules.late_reads
  late_reads_event_source = "meterflow.lake"
  late_reads_detail_type  = "LateReadsStaged"
  late_reads_queue_arn    = module.queues.queue_arns["late_reads"]

  scheduler_rule_name     = local.names.schedules.input_adapter_scheduler
  scheduler_rate_minutes  = var.scheduler_rate_minutes
  scheduler_enabled       = var.scheduler_enabled
  scheduler_function_name = module.functions.function_names["input_adapter_scheduler"]
  scheduler_function_arn  = module.functions.function_arns["input_adapter_scheduler"]
}

module "api" {
  source = "./modules/api"

  name                    = local.names.rest_api
  routes                  = local.api_routes
  function_name           = module.functions.function_names["api"]
  function_invoke_arn     = module.functions.invoke_arns["api"]
  stage_name              = "prod"
  throttling_burst_limit  = var.api_throttling_burst_limit
  throttling_rate_limit   = var.api_throttling_rate_limit
  execution_logging_level = var.api_execution_logging_level
  create_cloudwatch_role  = var.create_api_gateway_cloudwatch_role
  access_log_group_name   = local.names.log_groups.api_access
  log_retention_in_days   = var.log_retention_in_days
  kms_key_arn             = module.kms.key_arn
  partition               = local.partition

  # The input adapter's HES jobs (request_hes_file, check_hes_file) call this API with SigV4 when an
  # integration's HES is this stack's simulator.
  invoke_grants = {
    lake_worker = {
      role_name = module.functions.role_names["lake_worker"]
      routes    = ["POST /readings/file", "GET /readings/file"]
    }
  }
}

module "sftp" {
  source = "./modules/sftp"

  server_name                    = local.names.sftp_server
  user_name                      = "sftp-user"
  bucket_name                    = module.storage.bucket_name
  bucket_arn                     = module.storage.bucket_arn
  home_prefix                    = module.storage.exports_prefix
  secret_name                    = local.names.secrets.sftp_private_key
  secret_description             = "Private key of the HES SFTP user (seed 000: retrieve it, chmod 400, sftp -i)."
  secret_recovery_window_in_days = var.secret_recovery_window_in_days
  security_policy_name           = var.sftp_security_policy_name
  kms_key_arn                    = module.kms.key_arn
  log_group_name                 = local.names.log_groups.sftp
  log_retention_in_days          = var.log_retention_in_days
  account_id                     = local.account_id
  region                         = local.region
  partition                      = local.partition
}
