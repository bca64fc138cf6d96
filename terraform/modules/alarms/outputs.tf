output "alarm_arns" {
  description = "ARNs of the alarms by name."
  value       = { for name, alarm in aws_cloudwatch_metric_alarm.this : name => alarm.arn }
}
