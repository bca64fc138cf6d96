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
  execution_alarms = merge([
    for name, arn in local.alarmed_state_machines : {
      for outcome, metric in local.execution_outcomes : "${name}-executions-${outcome}" => {
        state_machine = name
        arn           = arn
        metric        = metric
      }
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "executions" {
  for_each = local.execution_alarms

  alarm_name          = each.key
  alarm_description   = "${each.value.metric} of ${each.value.state_machine}: see its failed executions in the Step Functions console or log group."
  namespace           = "AWS/States"
  metric_name         = each.value.metric
  dimensions          = { StateMachineArn = each.value.arn }
  statistic           = "Sum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  tags = var.tags
}
