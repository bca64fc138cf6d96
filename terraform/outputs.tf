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
  description = "Lambda function names by role (api, start_file_export, export_worker)."
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
