# Seed 000 (HES simulator guide) names the first five outputs; keep them exactly.

output "apiGatewayInvokeURL" {
  description = "Base URL of the HES API: https://<id>.execute-api.<region>.amazonaws.com/prod."
  value       = module.api.invoke_url
}

output "SecretARN" {
  description = "ARN of the secret holding the SFTP user's private key."
  value       = module.sftp.secret_arn
}

output "SecretName" {
  description = "Name of the secret holding the SFTP user's private key (<stack>/sftp/private_key)."
  value       = module.sftp.secret_name
}

output "SftpServerAddress" {
  description = "SFTP host: <id>.server.transfer.<region>.amazonaws.com."
  value       = module.sftp.server_endpoint
}

output "SftpUserName" {
  description = "SFTP user name (sftp-user)."
  value       = module.sftp.user_name
}

output "sftp_host_key_fingerprint" {
  description = "SHA-256 fingerprint of the SFTP server's host key; pin it in clients instead of skipping host-key checks."
  value       = module.sftp.host_key_fingerprint
}

output "exports_bucket" {
  description = "Name of the HES exports bucket."
  value       = module.storage.bucket_name
}

output "file_requests_queue_url" {
  description = "URL of the file-requests queue."
  value       = module.queues.queue_urls["file_requests"]
}

output "export_jobs_queue_url" {
  description = "URL of the export-jobs queue."
  value       = module.queues.queue_urls["export_jobs"]
}

output "dead_letter_queue_urls" {
  description = "URLs of the dead-letter queues by queue key."
  value       = module.queues.dlq_urls
}

output "file_requests_table" {
  description = "Name of the file-requests table."
  value       = module.tables.table_names["file_requests"]
}

output "export_state_machine_arn" {
  description = "ARN of the HES export state machine."
  value       = module.workflows.state_machine_arn
}

output "lambda_function_names" {
  description = "Lambda function names by role (api, start_file_export, export_worker, lake_worker, start_file_ingest, merge_late_reads, input_adapter_scheduler, bridge_worker, site_dispatcher, site_messages)."
  value       = module.functions.function_names
}

output "kms_key_arn" {
  description = "ARN of the stack's customer-managed KMS key."
  value       = module.kms.key_arn
}

output "api_routes" {
  description = "Routes served by the API, as \"METHOD /path\"."
  value       = module.api.routes
}

# The lake.

output "InboundBucket" {
  description = "Name of the inbound bucket: landing/ (compressed HES files), uncompressed/ (being ingested), processed/ (archive)."
  value       = module.storage.lake_bucket_names["inbound"]
}

output "IntegratedBucket" {
  description = "Name of the integrated bucket (the lake's Parquet tables, staging/, manifests/, errors/)."
  value       = module.storage.lake_bucket_names["integrated"]
}

output "AthenaResultsBucket" {
  description = "Name of the bucket receiving the lake workgroup's query results."
  value       = module.storage.lake_bucket_names["athena_results"]
}

output "GlueDatabase" {
  description = "Name of the lake's Glue database."
  value       = module.catalog.database_name
}

output "AthenaWorkgroup" {
  description = "Name of the lake's Athena workgroup."
  value       = module.catalog.workgroup_name
}

output "AlertsTopicArn" {
  description = "ARN of the alerts topic (failed input adapter runs)."
  value       = module.alerts.topic_arn
}

output "LakeIngestStateMachineArn" {
  description = "ARN of the lake-ingest state machine."
  value       = module.workflows.lake_ingest_state_machine_arn
}

output "InputAdapterStateMachineArn" {
  description = "ARN of the input-adapter state machine."
  value       = module.workflows.input_adapter_state_machine_arn
}

output "lake_queue_urls" {
  description = "URLs of the lake's queues (lake_jobs, uncompressed_objects, late_reads)."
  value       = { for key in ["lake_jobs", "uncompressed_objects", "late_reads"] : key => module.queues.queue_urls[key] }
}

output "lake_tables" {
  description = "Names of the lake's DynamoDB tables (integrations, lake_files)."
  value       = { for key in ["integrations", "lake_files"] : key => module.tables.table_names[key] }
}

# The on-premises bridge.

output "BackfillStateMachineArn" {
  description = "ARN of the historian-backfill state machine (started by POST /backfills)."
  value       = module.workflows.historian_backfill_state_machine_arn
}

output "IotDataEndpoint" {
  description = "IoT Core data endpoint (ATS) the site workers connect to (MQTT over TLS, port 8883, client certificate)."
  value       = module.iot.data_endpoint
}

output "OnpremWorkerPolicyName" {
  description = "IoT policy to attach to every worker certificate (aws iot attach-policy)."
  value       = module.iot.policy_name
}

output "OnpremWorkerThingType" {
  description = "Thing type of the site workers (aws iot create-thing --thing-type-name)."
  value       = module.iot.thing_type_name
}

output "site_topic_rules" {
  description = "Names of the IoT topic rules by site-to-cloud channel (results, progress, heartbeats)."
  value       = module.iot.topic_rule_names
}

output "bridge_queue_urls" {
  description = "URLs of the bridge's queues (bridge_jobs, site_dispatch, site_messages)."
  value       = { for key in ["bridge_jobs", "site_dispatch", "site_messages"] : key => module.queues.queue_urls[key] }
}

output "bridge_jobs_table" {
  description = "Name of the bridge-jobs table (GET /jobs/{job_id} reads it)."
  value       = module.tables.table_names["bridge_jobs"]
}

output "LambdaImageRepositoryUrl" {
  description = "ECR repository of the functions' container image: `make image IMAGE_REPOSITORY=<this>` pushes to it."
  value       = module.registry.repository_url
}
