# The state machines: the HES export, the lake's lake-ingest and input-adapter workflows, and the
# on-premises bridge's historian-backfill workflow. Their ASL lives in state_machines/ at the
# repository root and is the same file the local runtime renders (meterflow/localcloud/stack.py
# StateMachineSpec.render), so the template variables below must be exactly the placeholders of each
# file (tests/static/test_state_machines.py).

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

  definition = templatefile("${path.module}/../../../state_machines/hes_export.asl.json", {
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

# ---------------------------------------------------------------------------------------------
# Lake workflows: lake-ingest (one inbound file into the integrated zone) and input-adapter (one
# window of readings from the HES into the inbound bucket). Both hand their work to the lake worker
# through the lake-jobs queue with task tokens. historian-backfill (the on-premises bridge, below)
# hands its cloud steps to the bridge worker through the bridge-jobs queue the same way, which is
# why it shares their role and log group setup (each role may send to its own feature's queue only).
# ---------------------------------------------------------------------------------------------

locals {
  lake_machines = {
    lake_ingest = {
      name           = var.lake_ingest_name
      log_group_name = var.lake_ingest_log_group_name
    }
    input_adapter = {
      name           = var.input_adapter_name
      log_group_name = var.input_adapter_log_group_name
    }
    historian_backfill = {
      name           = var.historian_backfill_name
      log_group_name = var.historian_backfill_log_group_name
    }
  }

  lake_machine_arns = {
    for key, machine in local.lake_machines :
    key => "arn:${var.partition}:states:${var.region}:${var.account_id}:stateMachine:${machine.name}"
  }

  lake_policies = {
    lake_ingest        = data.aws_iam_policy_document.lake_ingest.json
    input_adapter      = data.aws_iam_policy_document.input_adapter.json
    historian_backfill = data.aws_iam_policy_document.historian_backfill.json
  }
}

resource "aws_cloudwatch_log_group" "lake" {
  for_each = local.lake_machines

  name              = each.value.log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "lake_assume" {
  for_each = local.lake_machines

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
      values   = [local.lake_machine_arns[each.key]]
    }
  }
}

# What every workflow of local.lake_machines needs: encryption of the jobs it queues, tracing and
# log delivery. Each sends its jobs to its own feature's queue (statements below).
data "aws_iam_policy_document" "lake_common" {
  # The queues are encrypted with the stack key: sending needs a data key.
  statement {
    sid       = "EncryptQueuedJobs"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${var.region}.amazonaws.com"]
    }
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

  # Log delivery to CloudWatch Logs: these APIs do not support resource-level permissions (see the
  # export state machine's policy above).
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

data "aws_iam_policy_document" "lake_ingest" {
  source_policy_documents = [data.aws_iam_policy_document.lake_common.json]

  statement {
    sid       = "SendLakeJobs"
    actions   = ["sqs:SendMessage"]
    resources = [var.lake_jobs_queue_arn]
  }

  # MarkIngesting (PutItem), MarkIngested / MarkIngestFailed (UpdateItem).
  statement {
    sid       = "RecordLakeFileStatus"
    actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [var.lake_files_table_arn]
  }
}

data "aws_iam_policy_document" "input_adapter" {
  source_policy_documents = [data.aws_iam_policy_document.lake_common.json]

  statement {
    sid       = "SendLakeJobs"
    actions   = ["sqs:SendMessage"]
    resources = [var.lake_jobs_queue_arn]
  }

  # MarkRunning (conditional claim), MarkIdle, MarkIntegrationFailed.
  statement {
    sid       = "ClaimAndReleaseIntegrations"
    actions   = ["dynamodb:UpdateItem"]
    resources = [var.integrations_table_arn]
  }

  # CheckIngestion polls the file's status.
  statement {
    sid       = "ReadLakeFileStatus"
    actions   = ["dynamodb:GetItem"]
    resources = [var.lake_files_table_arn]
  }

  # ArchiveOriginal: aws-sdk:s3:copyObject from landing/ to processed/ (a copy reads the source's
  # tags and writes them to the copy).
  statement {
    sid       = "ReadLandedOriginals"
    actions   = ["s3:GetObject", "s3:GetObjectTagging"]
    resources = ["${var.inbound_bucket_arn}/${var.inbound_landing_prefix}*"]
  }

  statement {
    sid       = "ArchiveOriginals"
    actions   = ["s3:PutObject", "s3:PutObjectTagging"]
    resources = ["${var.inbound_bucket_arn}/${var.inbound_processed_prefix}*"]
  }

  # DeleteLanding and DeleteUncompressed: aws-sdk:s3:deleteObject once the file is ingested.
  statement {
    sid     = "CleanUpIngestedFiles"
    actions = ["s3:DeleteObject"]
    resources = [
      "${var.inbound_bucket_arn}/${var.inbound_landing_prefix}*",
      "${var.inbound_bucket_arn}/${var.inbound_uncompressed_prefix}*",
    ]
  }

  statement {
    sid       = "EncryptInboundObjects"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  # NotifyFailure publishes to the alerts topic, which is encrypted with the stack key.
  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [var.alerts_topic_arn]
  }

  statement {
    sid       = "EncryptAlerts"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lake" {
  for_each = local.lake_machines

  name               = "${each.value.name}-sfn"
  assume_role_policy = data.aws_iam_policy_document.lake_assume[each.key].json

  tags = var.tags
}

resource "aws_iam_role_policy" "lake" {
  for_each = local.lake_machines

  name   = "${each.value.name}-sfn"
  role   = aws_iam_role.lake[each.key].id
  policy = local.lake_policies[each.key]
}

resource "aws_sfn_state_machine" "lake_ingest" {
  #checkov:skip=CKV_AWS_285:Execution history is logged at level ALL, without input/output payloads on purpose: they carry task tokens (which complete a task when leaked) and object keys of meter data. The Step Functions console keeps full execution history for 90 days.
  name     = var.lake_ingest_name
  type     = "STANDARD"
  role_arn = aws_iam_role.lake["lake_ingest"].arn

  definition = templatefile("${path.module}/../../../state_machines/lake_ingest.asl.json", {
    lake_jobs_queue_url       = var.lake_jobs_queue_url
    lake_files_table          = var.lake_files_table_name
    range_max_concurrency     = var.lake_tuning.range_max_concurrency
    compact_max_concurrency   = var.lake_tuning.compact_max_concurrency
    split_timeout_seconds     = var.lake_tuning.split_timeout_seconds
    stage_timeout_seconds     = var.lake_tuning.stage_timeout_seconds
    stage_heartbeat_seconds   = var.lake_tuning.stage_heartbeat_seconds
    compact_timeout_seconds   = var.lake_tuning.compact_timeout_seconds
    compact_heartbeat_seconds = var.lake_tuning.compact_heartbeat_seconds
    finalize_timeout_seconds  = var.lake_tuning.finalize_timeout_seconds
  })

  tracing_configuration {
    enabled = true
  }

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.lake["lake_ingest"].arn}:*"
    include_execution_data = false
    level                  = "ALL"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.lake_tuning.stage_heartbeat_seconds < var.lake_tuning.stage_timeout_seconds
      error_message = "stage_heartbeat_seconds must be shorter than stage_timeout_seconds."
    }

    precondition {
      condition     = var.lake_tuning.compact_heartbeat_seconds < var.lake_tuning.compact_timeout_seconds
      error_message = "compact_heartbeat_seconds must be shorter than compact_timeout_seconds."
    }

    # A worker that beats less often than HeartbeatSeconds fails every long job with States.Timeout.
    precondition {
      condition     = var.worker_heartbeat_seconds < min(var.lake_tuning.stage_heartbeat_seconds, var.lake_tuning.compact_heartbeat_seconds)
      error_message = "heartbeat_interval_seconds must be shorter than stage_heartbeat_seconds and compact_heartbeat_seconds."
    }
  }

  # The role's policy must be in place before the first execution uses it.
  depends_on = [aws_iam_role_policy.lake]
}

resource "aws_sfn_state_machine" "input_adapter" {
  #checkov:skip=CKV_AWS_285:Execution history is logged at level ALL, without input/output payloads on purpose: they carry task tokens (which complete a task when leaked) and HES request data. The Step Functions console keeps full execution history for 90 days.
  name     = var.input_adapter_name
  type     = "STANDARD"
  role_arn = aws_iam_role.lake["input_adapter"].arn

  definition = templatefile("${path.module}/../../../state_machines/input_adapter.asl.json", {
    lake_jobs_queue_url          = var.lake_jobs_queue_url
    integrations_table           = var.integrations_table_name
    lake_files_table             = var.lake_files_table_name
    alerts_topic_arn             = var.alerts_topic_arn
    inbound_bucket               = var.inbound_bucket_name
    hes_job_timeout_seconds      = var.lake_tuning.hes_job_timeout_seconds
    transfer_timeout_seconds     = var.lake_tuning.transfer_timeout_seconds
    transfer_heartbeat_seconds   = var.lake_tuning.transfer_heartbeat_seconds
    hes_poll_interval_seconds    = var.lake_tuning.hes_poll_interval_seconds
    hes_poll_max_attempts        = var.lake_tuning.hes_poll_max_attempts
    ingest_poll_interval_seconds = var.lake_tuning.ingest_poll_interval_seconds
    ingest_poll_max_attempts     = var.lake_tuning.ingest_poll_max_attempts
  })

  tracing_configuration {
    enabled = true
  }

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.lake["input_adapter"].arn}:*"
    include_execution_data = false
    level                  = "ALL"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.lake_tuning.transfer_heartbeat_seconds < var.lake_tuning.transfer_timeout_seconds
      error_message = "transfer_heartbeat_seconds must be shorter than transfer_timeout_seconds."
    }

    precondition {
      condition     = var.worker_heartbeat_seconds < var.lake_tuning.transfer_heartbeat_seconds
      error_message = "heartbeat_interval_seconds must be shorter than transfer_heartbeat_seconds."
    }
  }

  depends_on = [aws_iam_role_policy.lake]
}

# ---------------------------------------------------------------------------------------------
# On-premises bridge: historian-backfill. PrepareUpload and VerifyUpload are bridge-worker jobs
# (bridge-jobs queue); RunOnSite sends the site job to the site-dispatch queue, whose dispatcher
# publishes it to the site's worker over IoT Core; the worker's heartbeats and result come back
# through the site-messages queue. MarkFailed records the failure in the bridge-jobs table.
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "historian_backfill" {
  source_policy_documents = [data.aws_iam_policy_document.lake_common.json]

  # PrepareUpload and VerifyUpload.
  statement {
    sid       = "SendBridgeJobs"
    actions   = ["sqs:SendMessage"]
    resources = [var.bridge_jobs_queue_arn]
  }

  # RunOnSite (the queue is encrypted with the stack key: lake_common's EncryptQueuedJobs covers
  # it, being scoped to the key through SQS, not to a queue).
  statement {
    sid       = "SendSiteJobs"
    actions   = ["sqs:SendMessage"]
    resources = [var.site_dispatch_queue_arn]
  }

  # MarkFailed.
  statement {
    sid       = "RecordBackfillFailure"
    actions   = ["dynamodb:UpdateItem"]
    resources = [var.bridge_jobs_table_arn]
  }
}

resource "aws_sfn_state_machine" "historian_backfill" {
  #checkov:skip=CKV_AWS_285:Execution history is logged at level ALL, without input/output payloads on purpose: they carry task tokens (which complete a task when leaked), presigned upload URLs (which let anyone write the object) and meter ids. The Step Functions console keeps full execution history for 90 days.
  name     = var.historian_backfill_name
  type     = "STANDARD"
  role_arn = aws_iam_role.lake["historian_backfill"].arn

  definition = templatefile("${path.module}/../../../state_machines/historian_backfill.asl.json", {
    bridge_jobs_queue_url       = var.bridge_jobs_queue_url
    site_dispatch_queue_url     = var.site_dispatch_queue_url
    bridge_jobs_table           = var.bridge_jobs_table_name
    site_timeout_seconds        = var.bridge_tuning.site_timeout_seconds
    site_heartbeat_seconds      = var.bridge_tuning.site_heartbeat_seconds
    site_retry_interval_seconds = var.bridge_tuning.site_retry_interval_seconds
    site_max_attempts           = var.bridge_tuning.site_max_attempts
  })

  tracing_configuration {
    enabled = true
  }

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.lake["historian_backfill"].arn}:*"
    include_execution_data = false
    level                  = "ALL"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.bridge_tuning.site_heartbeat_seconds < var.bridge_tuning.site_timeout_seconds
      error_message = "site_heartbeat_seconds must be shorter than site_timeout_seconds."
    }

    # PrepareUpload presigns the upload once for every attempt of RunOnSite; the URL lives
    # UPLOAD_URL_LIFETIME (12 h, meterflow/bridge/domain/jobs.py). The first attempt, its
    # site_max_attempts retries and the waits between them (doubling from
    # site_retry_interval_seconds) must end before it expires.
    precondition {
      condition = (
        (var.bridge_tuning.site_max_attempts + 1) * var.bridge_tuning.site_timeout_seconds
        + var.bridge_tuning.site_retry_interval_seconds * [0, 1, 3, 7, 15, 31][min(var.bridge_tuning.site_max_attempts, 5)]
        <= 43200
      )
      error_message = "(site_max_attempts + 1) x site_timeout_seconds plus the retry waits must fit in the 12 h lifetime of the presigned upload URL."
    }
  }

  depends_on = [aws_iam_role_policy.lake]
}
