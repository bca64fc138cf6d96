output "database_name" {
  description = "Name of the Glue database."
  value       = aws_glue_catalog_database.this.name
}

output "table_names" {
  description = "Names of the Glue tables."
  value       = [for table in aws_glue_catalog_table.this : table.name]
}

output "location_templates" {
  description = "Partition-projection location templates by table (relative to the bucket)."
  value       = local.location_templates
}

output "workgroup_name" {
  description = "Name of the Athena workgroup."
  value       = aws_athena_workgroup.this.name
}

output "workgroup_arn" {
  description = "ARN of the Athena workgroup."
  value       = aws_athena_workgroup.this.arn
}

output "results_location" {
  description = "S3 location of the workgroup's query results."
  value       = "s3://${var.results_bucket_name}/${var.results_prefix}"
}
