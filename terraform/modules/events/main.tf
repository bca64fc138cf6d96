# EventBridge on the default bus: the late-reads rule (meterflow/localcloud/stack.py EventRuleSpec) forwards
# LateReadsStaged events to the late-reads queue, and the input adapter schedule (ScheduleSpec)
# invokes the scheduler function every scheduler_rate_minutes.

resource "aws_cloudwatch_event_rule" "late_reads" {
  name           = var.late_reads_rule_name
  description    = "Late reads staged by the lake's range workers, to the late-reads queue."
  event_bus_name = "default"

  event_pattern = jsonencode({
    source        = [var.late_reads_event_source]
    "detail-type" = [var.late_reads_detail_type]
  })

  tags = var.tags
}

# The queue's policy admits events.amazonaws.com from this rule's ARN (modules/queues), and the key
# policy lets EventBridge encrypt for that queue (modules/kms).
resource "aws_cloudwatch_event_target" "late_reads" {
  rule           = aws_cloudwatch_event_rule.late_reads.name
  event_bus_name = aws_cloudwatch_event_rule.late_reads.event_bus_name
  target_id      = "late-reads-queue"
  arn            = var.late_reads_queue_arn

  retry_policy {
    maximum_event_age_in_seconds = var.late_reads_maximum_event_age_in_seconds
    maximum_retry_attempts       = var.late_reads_maximum_retry_attempts
  }
}

resource "aws_cloudwatch_event_rule" "scheduler" {
  name                = var.scheduler_rule_name
  description         = "Starts the input adapters of the integrations that are due."
  schedule_expression = "rate(${var.scheduler_rate_minutes} ${var.scheduler_rate_minutes == 1 ? "minute" : "minutes"})"
  state               = var.scheduler_enabled ? "ENABLED" : "DISABLED"

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "scheduler" {
  rule      = aws_cloudwatch_event_rule.scheduler.name
  target_id = "input-adapter-scheduler"
  arn       = var.scheduler_function_arn
}

resource "aws_lambda_permission" "scheduler" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = var.scheduler_function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.scheduler.arn
}
