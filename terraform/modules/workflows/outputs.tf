output "state_machine_arn" {
  description = "ARN of the HES export state machine."
  value       = aws_sfn_state_machine.this.arn
}

output "state_machine_name" {
  description = "Name of the HES export state machine."
  value       = aws_sfn_state_machine.this.name
}

output "role_arn" {
  description = "ARN of the state machine's execution role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Name of the state machine's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "lake_ingest_state_machine_arn" {
  description = "ARN of the lake-ingest state machine."
  value       = aws_sfn_state_machine.lake_ingest.arn
}

output "input_adapter_state_machine_arn" {
  description = "ARN of the input-adapter state machine."
  value       = aws_sfn_state_machine.input_adapter.arn
}

output "lake_role_arns" {
  description = "ARNs of the execution roles of the task-token workflows sharing one role setup (lake_ingest, input_adapter: lake-jobs; historian_backfill: bridge-jobs) by workflow key."
  value       = { for key, role in aws_iam_role.lake : key => role.arn }
}

output "historian_backfill_state_machine_arn" {
  description = "ARN of the historian-backfill state machine."
  value       = aws_sfn_state_machine.historian_backfill.arn
}
