# Errors (a handler raised: the SQS message returns to its queue, toward the DLQ) and throttles
# (reserved concurrency too small for the load) of every function.

locals {
  function_metrics = { errors = "Errors", throttles = "Throttles" }
}

module "alarms" {
  source = "../alarms"

  alarms = merge([
    for key, function in aws_lambda_function.this : {
      for suffix, metric in local.function_metrics : "${function.function_name}-${suffix}" => {
        description = "${metric} of ${function.function_name}: see its log group ${aws_cloudwatch_log_group.this[key].name}."
        namespace   = "AWS/Lambda"
        metric_name = metric
        dimensions  = { FunctionName = function.function_name }
        statistic   = "Sum"
      }
    }
  ]...)
  topic_arn      = var.alarm_topic_arn
  period_seconds = var.alarm_period_seconds
  tags           = var.tags
}
