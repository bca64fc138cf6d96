output "invoke_url" {
  description = "Invoke URL of the stage: https://<id>.execute-api.<region>.amazonaws.com/prod."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "rest_api_id" {
  description = "Id of the REST API."
  value       = aws_api_gateway_rest_api.this.id
}

output "execution_arn" {
  description = "Execution ARN of the REST API."
  value       = aws_api_gateway_rest_api.this.execution_arn
}

output "stage_arn" {
  description = "ARN of the stage."
  value       = aws_api_gateway_stage.this.arn
}

output "routes" {
  description = "The routes the API serves, as \"METHOD /path\"."
  value       = keys(local.routes)
}
