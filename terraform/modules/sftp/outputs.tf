output "server_id" {
  description = "Id of the Transfer Family server."
  value       = aws_transfer_server.this.id
}

output "server_endpoint" {
  description = "Host name of the SFTP endpoint: <id>.server.transfer.<region>.amazonaws.com."
  value       = aws_transfer_server.this.endpoint
}

output "host_key_fingerprint" {
  description = "SHA-256 fingerprint of the server's host key, for clients that verify host keys (they should)."
  value       = aws_transfer_server.this.host_key_fingerprint
}

output "user_name" {
  description = "SFTP user name."
  value       = aws_transfer_user.this.user_name
}

output "secret_arn" {
  description = "ARN of the secret holding the user's private key."
  value       = aws_secretsmanager_secret.private_key.arn
}

output "secret_name" {
  description = "Name of the secret holding the user's private key."
  value       = aws_secretsmanager_secret.private_key.name
}
