# A message in a dead-letter queue is work the stack gave up on: alarm on the first one, so a
# deployed stack never loses data quietly. The DLQs keep messages 14 days for a redrive.
resource "aws_cloudwatch_metric_alarm" "dlq_messages" {
  for_each = var.queues

  alarm_name          = "${aws_sqs_queue.dlq[each.key].name}-messages"
  alarm_description   = "Messages in ${aws_sqs_queue.dlq[each.key].name}: ${each.value.name} could not process them after its maxReceiveCount receives. Inspect, fix, then redrive (StartMessageMoveTask)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq[each.key].name }
  statistic           = "Maximum"
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
