# The HES export state machine. Its ASL lives in state_machines/ at the repository root and is the
# same file the local runtime renders (meterflow/stack.py StateMachineSpec.render), so the template
# variables below must be exactly the placeholders of that file (tests/static/test_drift.py).

locals {
  state_machine_arn = "arn:${var.partition}:states:${var.region}:${var.account_id}:stateMachine:${var.name}"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.state_machine_arn]
    }
  }
}

data "aws_iam_policy_document" "this" {
  # Plan, chunk and finalize jobs go to the export-jobs queue with a task token.
  statement {
    sid       = "SendExportJobs"
    actions   = ["sqs:SendMessage"]
    resources = [var.export_jobs_queue_arn]
  }

  # The queue is encrypted with the stack key: sending needs a data key.
  statement {
    sid       = "EncryptExportJobs"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${var.region}.amazonaws.com"]
    }
  }

  # MarkRunning / MarkCompleted / MarkFailed.
  statement {
    sid       = "RecordFileRequestStatus"
    actions   = ["dynamodb:UpdateItem"]
    resources = [var.file_requests_table_arn]
  }

  # X-Ray does not support resource-level permissions.
  statement {
    sid = "XRay"
    actions = [
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
    ]
    resources = ["*"]
  }

  # Log delivery to CloudWatch Logs: these CloudWatch Logs APIs do not support resource-level
  # permissions, AWS documents "*" for them (Step Functions developer guide, "IAM policies for
  # logging to CloudWatch Logs").
  statement {
    sid = "LogDelivery"
    actions = [
      "logs:CreateLogDelivery",
      "logs:GetLogDelivery",
      "logs:UpdateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:DescribeResourcePolicies",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-sfn"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-sfn"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_sfn_state_machine" "this" {
  #checkov:skip=CKV_AWS_285:Execution history is logged at level ALL, without input/output payloads on purpose: they carry task tokens (which complete a task when leaked) and request data. The Step Functions console keeps full execution history for 90 days.
  name     = var.name
  type     = "STANDARD"
  role_arn = aws_iam_role.this.arn

  definition = templatefile("${path.root}/../state_machines/hes_export.asl.json", {
    export_jobs_queue_url      = var.export_jobs_queue_url
    file_requests_table        = var.file_requests_table_name
    max_concurrency            = var.max_concurrency
    plan_timeout_seconds       = var.plan_timeout_seconds
    chunk_timeout_seconds      = var.chunk_timeout_seconds
    chunk_heartbeat_seconds    = var.chunk_heartbeat_seconds
    finalize_timeout_seconds   = var.finalize_timeout_seconds
    finalize_heartbeat_seconds = var.finalize_heartbeat_seconds
  })

  tracing_configuration {
    enabled = true
  }

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.this.arn}:*"
    include_execution_data = false
    level                  = "ALL"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.chunk_heartbeat_seconds < var.chunk_timeout_seconds
      error_message = "chunk_heartbeat_seconds must be shorter than chunk_timeout_seconds."
    }

    precondition {
      condition     = var.finalize_heartbeat_seconds < var.finalize_timeout_seconds
      error_message = "finalize_heartbeat_seconds must be shorter than finalize_timeout_seconds."
    }

    # A worker that beats less often than HeartbeatSeconds fails every long job with States.Timeout.
    precondition {
      condition     = var.worker_heartbeat_seconds < min(var.chunk_heartbeat_seconds, var.finalize_heartbeat_seconds)
      error_message = "heartbeat_interval_seconds must be shorter than chunk_heartbeat_seconds and finalize_heartbeat_seconds."
    }
  }

  # The role's policy must be in place before the first execution uses it.
  depends_on = [aws_iam_role_policy.this]
}
