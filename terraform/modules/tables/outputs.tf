output "table_names" {
  description = "Names of the tables by stack key."
  value       = { for key, table in aws_dynamodb_table.this : key => table.name }
}

output "table_arns" {
  description = "ARNs of the tables by stack key."
  value       = { for key, table in aws_dynamodb_table.this : key => table.arn }
}
