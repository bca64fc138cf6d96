# Meterflow on AWS: the resources of meterflow/stack.py (bucket, queues + DLQs, table, secret,
# state machine) plus what runs on them (Lambda functions from the Chalice zip, REST API, SFTP).

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

module "kms" {
  source = "./modules/kms"

  alias                   = local.names.kms_alias
  description             = "Meterflow ${var.stack_name}: S3, SQS, DynamoDB, Secrets Manager, Lambda environment and CloudWatch Logs"
  account_id              = local.account_id
  region                  = local.region
  partition               = local.partition
  log_group_names         = values(local.names.log_groups)
  administrator_arns      = var.kms_key_administrator_arns
  deletion_window_in_days = var.kms_deletion_window_in_days
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
}

module "queues" {
  source = "./modules/queues"

  queues                        = local.queues
  dlq_message_retention_seconds = 1209600
  kms_key_arn                   = module.kms.key_arn
}

module "tables" {
  source = "./modules/tables"

  tables                      = local.tables
  kms_key_arn                 = module.kms.key_arn
  deletion_protection_enabled = var.table_deletion_protection
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
}

module "functions" {
  source = "./modules/functions"

  function_names          = local.names.functions
  package_path            = var.lambda_package_path
  runtime                 = var.lambda_runtime
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

  # A chunk job may run for chunk_timeout_seconds; the export-jobs visibility timeout is 60 s longer.
  export_worker_timeout_seconds = var.chunk_timeout_seconds
  export_worker_memory_size     = var.export_worker_memory_size

  reserved_concurrency = {
    api               = var.api_reserved_concurrency
    start_file_export = var.start_file_export_reserved_concurrency
    export_worker     = var.export_worker_reserved_concurrency
  }

  log_retention_in_days = var.log_retention_in_days
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
