output "late_reads_rule_arn" {
  description = "ARN of the late-reads rule."
  value       = aws_cloudwatch_event_rule.late_reads.arn
}

output "scheduler_rule_arn" {
  description = "ARN of the input adapter schedule rule."
  value       = aws_cloudwatch_event_rule.scheduler.arn
}

output "schedule_expression" {
  description = "Schedule expression of the input adapter scheduler."
  value       = aws_cloudwatch_event_rule.scheduler.schedule_expression
}
