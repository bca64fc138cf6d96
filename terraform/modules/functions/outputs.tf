output "function_names" {
  description = "Function names by role."
  value       = { for key, function in aws_lambda_function.this : key => function.function_name }
}

output "function_arns" {
  description = "Function ARNs by role."
  value       = { for key, function in aws_lambda_function.this : key => function.arn }
}

output "invoke_arns" {
  description = "Invoke ARNs by role (for API Gateway integrations)."
  value       = { for key, function in aws_lambda_function.this : key => function.invoke_arn }
}

output "role_arns" {
  description = "Execution role ARNs by role."
  value       = { for key, role in aws_iam_role.this : key => role.arn }
}

output "role_names" {
  description = "Execution role names by role."
  value       = { for key, role in aws_iam_role.this : key => role.name }
}
