output "policy_name" {
  description = "Name of the IoT policy to attach to every worker certificate."
  value       = aws_iot_policy.worker.name
}

output "policy_arn" {
  description = "ARN of the workers' IoT policy."
  value       = aws_iot_policy.worker.arn
}

output "thing_type_name" {
  description = "Name of the workers' thing type."
  value       = aws_iot_thing_type.worker.name
}

output "thing_type_arn" {
  description = "ARN of the workers' thing type."
  value       = aws_iot_thing_type.worker.arn
}

output "data_endpoint" {
  description = "IoT Core data endpoint (ATS) of the account and region: workers connect to it on 8883, the cloud publishes through it."
  value       = data.aws_iot_endpoint.data.endpoint_address
}

output "topic_rule_names" {
  description = "Names of the topic rules by site-to-cloud channel."
  value       = { for channel, rule in aws_iot_topic_rule.site_messages : channel => rule.name }
}

output "rule_role_arn" {
  description = "ARN of the IAM role the topic rules act with."
  value       = aws_iam_role.rules.arn
}
