output "bucket_name" {
  description = "Name of the exports bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the exports bucket."
  value       = aws_s3_bucket.this.arn
}

output "exports_prefix" {
  description = "Key prefix of finished export files."
  value       = var.exports_prefix
}

output "staging_prefix" {
  description = "Key prefix of chunk objects."
  value       = var.staging_prefix
}

output "lake_bucket_names" {
  description = "Names of the lake buckets by stack key."
  value       = { for key, bucket in aws_s3_bucket.lake : key => bucket.id }
}

output "lake_bucket_arns" {
  description = "ARNs of the lake buckets by stack key."
  value       = { for key, bucket in aws_s3_bucket.lake : key => bucket.arn }
}
