# Every execution that fails, times out or is aborted: the workflows' Catch states already mark
# the request or integration failed; the alarm tells an operator.

locals {
  alarmed_state_machines = {
    (var.name)                    = aws_sfn_state_machine.this.arn
    (var.lake_ingest_name)        = aws_sfn_state_machine.lake_ingest.arn
    (var.input_adapter_name)      = aws_sfn_state_machine.input_adapter.arn
    (var.historian_backfill_name) = aws_sfn_state_machine.historian_backfill.arn
  }
  execution_outcomes = {
    failed    = "ExecutionsFailed"
    timed-out = "ExecutionsTimedOut"
    aborted   = "ExecutionsAborted"
  }
}

module "alarms" {
  source = "../alarms"

  alarms = merge([
    for name, arn in local.alarmed_state_machines : {
      for outcome, metric in local.execution_outcomes : "${name}-executions-${outcome}" => {
        description = "${metric} of ${name}: see its failed executions in the Step Functions console or its log group."
        namespace   = "AWS/States"
        metric_name = metric
        dimensions  = { StateMachineArn = arn }
        statistic   = "Sum"
      }
    }
  ]...)
  topic_arn      = var.alarm_topic_arn
  period_seconds = var.alarm_period_seconds
  tags           = var.tags
}
