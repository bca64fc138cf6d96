# The three Lambda functions of the Chalice app, declared here instead of in the chalice.tf.json
# that `chalice package --pkg-format terraform` emits (see terraform/README.md, "Chalice"). The
# deployment zip is Chalice's; names, roles, triggers and the API are ours.

locals {
  functions = {
    api = {
      name                 = var.function_names.api
      handler              = "app.app"
      timeout              = var.api_timeout_seconds
      memory_size          = var.api_memory_size
      reserved_concurrency = var.reserved_concurrency.api
    }
    start_file_export = {
      name                 = var.function_names.start_file_export
      handler              = "app.start_file_export"
      timeout              = var.start_file_export_timeout_seconds
      memory_size          = var.start_file_export_memory_size
      reserved_concurrency = var.reserved_concurrency.start_file_export
    }
    export_worker = {
      name                 = var.function_names.export_worker
      handler              = "app.run_export_job"
      timeout              = var.export_worker_timeout_seconds
      memory_size          = var.export_worker_memory_size
      reserved_concurrency = var.reserved_concurrency.export_worker
    }
  }

  # Separate from local.functions: the policies reference the log groups, which iterate over it.
  policies = {
    api               = data.aws_iam_policy_document.api.json
    start_file_export = data.aws_iam_policy_document.start_file_export.json
    export_worker     = data.aws_iam_policy_document.export_worker.json
  }

  # SQS-triggered functions and their queues. Failed messages return to the queue and, after the
  # queue's maxReceiveCount, move to its DLQ: that is the functions' dead-letter path.
  event_sources = {
    start_file_export = var.file_requests_queue_arn
    export_worker     = var.export_jobs_queue_arn
  }

  s3_object_arns = [for prefix in [var.staging_prefix, var.exports_prefix] : "${var.bucket_arn}/${prefix}*"]
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.functions

  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

# ---------------------------------------------------------------------------------------------
# IAM: one role per function, explicit ARNs
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "common" {
  for_each = local.functions

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:*"]
  }

  # X-Ray does not support resource-level permissions.
  statement {
    sid       = "XRay"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  # Environment variables (Lambda) and SQS messages are encrypted with the stack key.
  statement {
    sid       = "DecryptWithStackKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["lambda.${var.region}.amazonaws.com", "sqs.${var.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "api" {
  source_policy_documents = [data.aws_iam_policy_document.common["api"].json]

  # PutItem records a request, GetItem reads its status; UpdateItem marks it failed when it cannot
  # be queued (services.request_export), otherwise it would stay "queued" forever.
  statement {
    sid       = "FileRequests"
    actions   = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [var.file_requests_table_arn]
  }

  statement {
    sid       = "QueueFileRequests"
    actions   = ["sqs:SendMessage"]
    resources = [var.file_requests_queue_arn]
  }

  statement {
    sid       = "EncryptFileRequestMessages"
    actions   = ["kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${var.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "start_file_export" {
  source_policy_documents = [data.aws_iam_policy_document.common["start_file_export"].json]

  statement {
    sid       = "StartExport"
    actions   = ["states:StartExecution"]
    resources = [var.state_machine_arn]
  }

  statement {
    sid       = "FileRequests"
    actions   = ["dynamodb:UpdateItem", "dynamodb:GetItem"]
    resources = [var.file_requests_table_arn]
  }

  statement {
    sid = "ConsumeFileRequests"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [var.file_requests_queue_arn]
  }
}

data "aws_iam_policy_document" "export_worker" {
  source_policy_documents = [data.aws_iam_policy_document.common["export_worker"].json]

  statement {
    sid       = "ReadWriteChunksAndExports"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = local.s3_object_arns
  }

  # finalize_export deletes the chunk objects of its export once the file is composed
  # (meterflow/domain/services.py); the staging lifecycle rule is only the safety net.
  statement {
    sid       = "DeleteOwnChunks"
    actions   = ["s3:DeleteObject"]
    resources = ["${var.bucket_arn}/${var.staging_prefix}*"]
  }

  # Without a condition on purpose: HeadObject of a missing key (finalize_export checks whether the
  # file already exists) answers 404 only to callers with s3:ListBucket, and a HeadObject request
  # carries no s3:prefix for a prefix condition to match; with 403 the export would fail. The bucket
  # holds nothing but the staging and exports prefixes.
  statement {
    sid       = "ListChunksAndExports"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }

  statement {
    sid       = "EncryptObjects"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  # The task-token APIs have no resource type: AWS requires Resource "*" for SendTaskSuccess,
  # SendTaskFailure and SendTaskHeartbeat (the token itself names the execution).
  statement {
    sid       = "ReportTaskResults"
    actions   = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]
    resources = ["*"]
  }

  statement {
    sid = "ConsumeExportJobs"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [var.export_jobs_queue_arn]
  }
}

resource "aws_iam_role" "this" {
  for_each = local.functions

  name               = "${each.value.name}-lambda"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  for_each = local.functions

  name   = "${each.value.name}-lambda"
  role   = aws_iam_role.this[each.key].id
  policy = local.policies[each.key]
}

# ---------------------------------------------------------------------------------------------
# Functions and their SQS triggers
# ---------------------------------------------------------------------------------------------

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:No function is invoked asynchronously: the API synchronously by API Gateway, the other two by SQS event source mappings, whose failed messages go to the source queue's DLQ (redrive policy). A function DLQ would never receive anything.
  #checkov:skip=CKV_AWS_117:The functions only call public AWS APIs (S3, SQS, DynamoDB, Step Functions) and reach nothing inside a VPC; a VPC would add NAT or interface endpoints and cold-start cost without isolating anything.
  #checkov:skip=CKV_AWS_272:The zip is built by `make package` (chalice package) and not signed: AWS Signer is not set up for this open-source project. Terraform deploys exactly the file whose hash it records in source_code_hash.
  for_each = local.functions

  function_name                  = each.value.name
  description                    = "Meterflow ${each.key} (Chalice handler ${each.value.handler})"
  role                           = aws_iam_role.this[each.key].arn
  filename                       = var.package_path
  source_code_hash               = filebase64sha256(var.package_path)
  handler                        = each.value.handler
  runtime                        = var.runtime
  architectures                  = ["x86_64"]
  timeout                        = each.value.timeout
  memory_size                    = each.value.memory_size
  reserved_concurrent_executions = each.value.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this[each.key].name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this]
}

resource "aws_lambda_event_source_mapping" "this" {
  for_each = local.event_sources

  event_source_arn        = each.value
  function_name           = aws_lambda_function.this[each.key].arn
  batch_size              = 1
  function_response_types = ["ReportBatchItemFailures"]

  # Keep the poller below the function's reserved concurrency so messages are not throttled back
  # onto the queue (and towards the DLQ) when the function is saturated.
  dynamic "scaling_config" {
    for_each = var.reserved_concurrency[each.key] >= 2 ? [var.reserved_concurrency[each.key]] : []

    content {
      maximum_concurrency = scaling_config.value
    }
  }
}
