# A message in a dead-letter queue is work the stack gave up on: alarm on the first one, so a
# deployed stack never loses data quietly. The DLQs keep messages 14 days for a redrive.
module "alarms" {
  source = "../alarms"

  alarms = {
    for key, queue in var.queues : "${aws_sqs_queue.dlq[key].name}-messages" => {
      description = "Messages in ${aws_sqs_queue.dlq[key].name}: ${queue.name} could not process them after its maxReceiveCount receives. Inspect, fix, then redrive (StartMessageMoveTask)."
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = aws_sqs_queue.dlq[key].name }
      statistic   = "Maximum"
    }
  }
  topic_arn      = var.alarm_topic_arn
  period_seconds = var.alarm_period_seconds
  tags           = var.tags
}
