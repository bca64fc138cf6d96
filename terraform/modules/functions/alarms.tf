# Errors (a handler raised: the SQS message returns to its queue, toward the DLQ) and throttles
# (reserved concurrency too small for the load) of every function.

locals {
  function_metrics = { errors = "Errors", throttles = "Throttles" }
  function_alarms = merge([
    for key, function in local.functions : {
      for suffix, metric in local.function_metrics : "${function.name}-${suffix}" => {
        function = key
        metric   = metric
      }
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "functions" {
  for_each = local.function_alarms

  alarm_name          = each.key
  alarm_description   = "${each.value.metric} of ${aws_lambda_function.this[each.value.function].function_name}: see its log group ${aws_cloudwatch_log_group.this[each.value.function].name}."
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = aws_lambda_function.this[each.value.function].function_name }
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
