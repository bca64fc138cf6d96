# Alarms that fire on the first period in which a metric is above zero: a message in a DLQ, a failed
# execution, a function error. The module that owns the watched resources declares them through
# this one, so every alarm of the stack behaves alike and notifies the same topic when it fires and
# when it clears.

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = var.alarms

  alarm_name          = each.key
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = var.period_seconds
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [var.topic_arn]
  ok_actions          = [var.topic_arn]

  tags = var.tags
}
