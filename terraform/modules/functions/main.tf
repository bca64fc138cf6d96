# The Lambda functions of the Chalice app, declared here instead of in the chalice.tf.json that
# `chalice package --pkg-format terraform` emits (see terraform/README.md, "Chalice"). Every
# function runs the one container image `make package` / `make image` build (pyarrow and numpy
# alone are over the 250 MB limit of a zip); each selects its Chalice handler with its command.

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
    lake_worker = {
      name                 = var.function_names.lake_worker
      handler              = "app.run_lake_job"
      timeout              = var.lake_worker_timeout_seconds
      memory_size          = var.lake_worker_memory_size
      reserved_concurrency = var.reserved_concurrency.lake_worker
    }
    start_file_ingest = {
      name                 = var.function_names.start_file_ingest
      handler              = "app.start_file_ingest"
      timeout              = var.start_file_ingest_timeout_seconds
      memory_size          = var.start_file_ingest_memory_size
      reserved_concurrency = var.reserved_concurrency.start_file_ingest
    }
    merge_late_reads = {
      name                 = var.function_names.merge_late_reads
      handler              = "app.merge_late_reads"
      timeout              = var.merge_late_reads_timeout_seconds
      memory_size          = var.merge_late_reads_memory_size
      reserved_concurrency = var.reserved_concurrency.merge_late_reads
    }
    input_adapter_scheduler = {
      name                 = var.function_names.input_adapter_scheduler
      handler              = "app.schedule_input_adapters"
      timeout              = var.input_adapter_scheduler_timeout_seconds
      memory_size          = var.input_adapter_scheduler_memory_size
      reserved_concurrency = var.reserved_concurrency.input_adapter_scheduler
    }
    bridge_worker = {
      name                 = var.function_names.bridge_worker
      handler              = "app.run_bridge_job"
      timeout              = var.bridge_worker_timeout_seconds
      memory_size          = var.bridge_worker_memory_size
      reserved_concurrency = var.reserved_concurrency.bridge_worker
    }
    site_dispatcher = {
      name                 = var.function_names.site_dispatcher
      handler              = "app.dispatch_site_jobs"
      timeout              = var.site_dispatcher_timeout_seconds
      memory_size          = var.site_dispatcher_memory_size
      reserved_concurrency = var.reserved_concurrency.site_dispatcher
    }
    site_messages = {
      name                 = var.function_names.site_messages
      handler              = "app.handle_site_messages"
      timeout              = var.site_messages_timeout_seconds
      memory_size          = var.site_messages_memory_size
      reserved_concurrency = var.reserved_concurrency.site_messages
    }
  }

  # Separate from local.functions: the policies reference the log groups, which iterate over it.
  policies = {
    api                     = data.aws_iam_policy_document.api.json
    start_file_export       = data.aws_iam_policy_document.start_file_export.json
    export_worker           = data.aws_iam_policy_document.export_worker.json
    lake_worker             = data.aws_iam_policy_document.lake_worker.json
    start_file_ingest       = data.aws_iam_policy_document.start_file_ingest.json
    merge_late_reads        = data.aws_iam_policy_document.merge_late_reads.json
    input_adapter_scheduler = data.aws_iam_policy_document.input_adapter_scheduler.json
    bridge_worker           = data.aws_iam_policy_document.bridge_worker.json
    site_dispatcher         = data.aws_iam_policy_document.site_dispatcher.json
    site_messages           = data.aws_iam_policy_document.site_messages.json
  }

  # SQS-triggered functions and their queues. Failed messages return to the queue and, after the
  # queue's maxReceiveCount, move to its DLQ: that is the functions' dead-letter path.
  event_sources = {
    start_file_export = var.file_requests_queue_arn
    export_worker     = var.export_jobs_queue_arn
    lake_worker       = var.lake_jobs_queue_arn
    start_file_ingest = var.uncompressed_objects_queue_arn
    merge_late_reads  = var.late_reads_queue_arn
    bridge_worker     = var.bridge_jobs_queue_arn
    site_dispatcher   = var.site_dispatch_queue_arn
    site_messages     = var.site_messages_queue_arn
  }

  s3_object_arns = [for prefix in [var.staging_prefix, var.exports_prefix] : "${var.bucket_arn}/${prefix}*"]

  # The Glue Data Catalog resources Athena reads for the lake's queries.
  glue_arns = [
    "arn:${var.partition}:glue:${var.region}:${var.account_id}:catalog",
    "arn:${var.partition}:glue:${var.region}:${var.account_id}:database/${var.glue_database_name}",
    "arn:${var.partition}:glue:${var.region}:${var.account_id}:table/${var.glue_database_name}/*",
  ]
  default_event_bus_arn = "arn:${var.partition}:events:${var.region}:${var.account_id}:event-bus/default"

  # The on-premises bridge. Topics are <root>/<tenant>/<worker>/<channel>: the cloud publishes a
  # site's jobs (the dispatcher) and cancellations (the API's cancel route), to any site.
  site_topic_arn_prefix = "arn:${var.partition}:iot:${var.region}:${var.account_id}:topic/${var.site_topic_root}"
  site_jobs_topic_arn   = "${local.site_topic_arn_prefix}/*/*/jobs"
  site_cancel_topic_arn = "${local.site_topic_arn_prefix}/*/*/cancel"
  backfill_executions   = "arn:${var.partition}:states:${var.region}:${var.account_id}:execution:${var.historian_backfill_state_machine_name}:*"

  # Functions that answer workflow tasks with their tokens: the job workers, and the handler of what
  # sites answer.
  task_token_workers = ["export_worker", "lake_worker", "bridge_worker", "site_messages"]
  # Functions that read or write objects of the stack's (SSE-KMS) buckets.
  s3_object_users = ["api", "export_worker", "lake_worker", "merge_late_reads", "bridge_worker"]

  consume_actions = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
  ]
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

  # Objects in the stack's buckets are encrypted with the stack key (SSE-KMS): reading needs
  # Decrypt, writing a data key. Only through S3, for the functions that use objects.
  dynamic "statement" {
    for_each = contains(local.s3_object_users, each.key) ? ["EncryptObjects"] : []

    content {
      sid       = statement.value
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [var.kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${var.region}.amazonaws.com"]
      }
    }
  }

  # The task-token APIs have no resource type: AWS requires Resource "*" for SendTaskSuccess,
  # SendTaskFailure and SendTaskHeartbeat (the token itself names the execution).
  dynamic "statement" {
    for_each = contains(local.task_token_workers, each.key) ? ["ReportTaskResults"] : []

    content {
      sid       = statement.value
      actions   = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]
      resources = ["*"]
    }
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

  # GET /lake/queries/{name}: named Athena queries in the lake workgroup, which enforces its result
  # location and encryption. StopQueryExecution cancels a query that outlives the API's timeout.
  statement {
    sid = "QueryLake"
    actions = [
      "athena:StartQueryExecution",
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:StopQueryExecution",
    ]
    resources = [var.athena_workgroup_arn]
  }

  statement {
    sid = "ReadLakeCatalog"
    actions = [
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:GetTables",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
    ]
    resources = local.glue_arns
  }

  # Athena reads the tables' objects with the caller's permissions: only the table prefixes.
  statement {
    sid       = "ReadLakeTables"
    actions   = ["s3:GetObject"]
    resources = [for prefix in var.lake_table_prefixes : "${var.integrated_bucket_arn}/${prefix}/*"]
  }

  # Athena lists the partitions' prefixes and locates both buckets.
  statement {
    sid       = "ListLakeAndResults"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.integrated_bucket_arn, var.athena_results_bucket_arn]
  }

  statement {
    sid = "WriteQueryResults"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${var.athena_results_bucket_arn}/${var.athena_results_prefix}*"]
  }

  # POST /backfills records the job (conditional PutItem) and starts its execution, named after
  # the job; GET /jobs/{job_id} reads it; POST /jobs/{job_id}/cancel stops the execution, marks the
  # job cancelled and tells the site on its cancel topic.
  statement {
    sid       = "BridgeJobs"
    actions   = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [var.bridge_jobs_table_arn]
  }

  statement {
    sid       = "StartBackfills"
    actions   = ["states:StartExecution"]
    resources = [var.historian_backfill_state_machine_arn]
  }

  statement {
    sid       = "CancelBackfills"
    actions   = ["states:StopExecution"]
    resources = [local.backfill_executions]
  }

  statement {
    sid       = "PublishCancellations"
    actions   = ["iot:Publish"]
    resources = [local.site_cancel_topic_arn]
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
  # (meterflow/hes/domain/services.py); the staging lifecycle rule is only the safety net.
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

# ---------------------------------------------------------------------------------------------
# Lake functions
# ---------------------------------------------------------------------------------------------

# run_lake_job: every job of both lake workflows (split, stage, plan, compact and finalize a file;
# request, check, download and uncompress a HES file).
data "aws_iam_policy_document" "lake_worker" {
  source_policy_documents = [data.aws_iam_policy_document.common["lake_worker"].json]

  statement {
    sid = "ReadWriteLakeObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${var.inbound_bucket_arn}/*", "${var.integrated_bucket_arn}/*"]
  }

  # Listing partitions and staged objects; a missing key must be a 404, not a 403.
  statement {
    sid       = "ListLakeBuckets"
    actions   = ["s3:ListBucket"]
    resources = [var.inbound_bucket_arn, var.integrated_bucket_arn]
  }

  # download_hes_file: the SFTP user's private key.
  statement {
    sid       = "ReadSftpKey"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.sftp_secret_arn]
  }

  statement {
    sid       = "DecryptSftpKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "IntegrationsAndLakeFiles"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"]
    resources = [var.integrations_table_arn, var.lake_files_table_arn]
  }

  # Range workers announce staged late reads (source meterflow.lake, LateReadsStaged).
  statement {
    sid       = "AnnounceLateReads"
    actions   = ["events:PutEvents"]
    resources = [local.default_event_bus_arn]
  }

  statement {
    sid       = "ConsumeLakeJobs"
    actions   = local.consume_actions
    resources = [var.lake_jobs_queue_arn]
  }
}

# start_file_ingest: an object under uncompressed/ starts the lake-ingest workflow.
data "aws_iam_policy_document" "start_file_ingest" {
  source_policy_documents = [data.aws_iam_policy_document.common["start_file_ingest"].json]

  statement {
    sid       = "StartLakeIngest"
    actions   = ["states:StartExecution"]
    resources = [var.lake_ingest_state_machine_arn]
  }

  # HeadObject is authorised by s3:GetObject; GetObject reads the file's first bytes.
  statement {
    sid       = "ReadUncompressedObjects"
    actions   = ["s3:GetObject"]
    resources = ["${var.inbound_bucket_arn}/${var.inbound_uncompressed_prefix}*"]
  }

  # Without a condition on purpose: an object that is gone by the time its event is read (already
  # ingested and deleted) must answer 404, which S3 only does for callers with s3:ListBucket; a
  # HeadObject request carries no s3:prefix for a condition to match.
  statement {
    sid       = "ListInbound"
    actions   = ["s3:ListBucket"]
    resources = [var.inbound_bucket_arn]
  }

  statement {
    sid       = "DecryptUncompressedObjects"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "ConsumeUncompressedObjects"
    actions   = local.consume_actions
    resources = [var.uncompressed_objects_queue_arn]
  }
}

# merge_late_reads: merges staged late reads into their partitions of the integrated zone.
data "aws_iam_policy_document" "merge_late_reads" {
  source_policy_documents = [data.aws_iam_policy_document.common["merge_late_reads"].json]

  statement {
    sid = "ReadWriteIntegrated"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${var.integrated_bucket_arn}/*"]
  }

  statement {
    sid       = "ListIntegrated"
    actions   = ["s3:ListBucket"]
    resources = [var.integrated_bucket_arn]
  }

  statement {
    sid       = "ConsumeLateReads"
    actions   = local.consume_actions
    resources = [var.late_reads_queue_arn]
  }
}

# schedule_input_adapters: finds the integrations that are due and starts an input adapter for each.
data "aws_iam_policy_document" "input_adapter_scheduler" {
  source_policy_documents = [data.aws_iam_policy_document.common["input_adapter_scheduler"].json]

  statement {
    sid       = "FindDueIntegrations"
    actions   = ["dynamodb:Scan", "dynamodb:Query"]
    resources = [var.integrations_table_arn, "${var.integrations_table_arn}/index/*"]
  }

  statement {
    sid       = "StartInputAdapters"
    actions   = ["states:StartExecution"]
    resources = [var.input_adapter_state_machine_arn]
  }
}

# ---------------------------------------------------------------------------------------------
# On-premises bridge functions
# ---------------------------------------------------------------------------------------------

# run_bridge_job: the historian_backfill workflow's cloud-side jobs (prepare the site's upload,
# verify it).
data "aws_iam_policy_document" "bridge_worker" {
  source_policy_documents = [data.aws_iam_policy_document.common["bridge_worker"].json]

  # prepare_backfill presigns the site's PUT of uncompressed/historian/<tenant>/<job_id>.csv: S3
  # authorises a presigned request as the signer, so this role must be allowed to put the object
  # (and to use the key for it); verify_backfill reads its size (HeadObject is authorised by
  # s3:GetObject).
  statement {
    sid       = "PresignAndVerifyHistorianUploads"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${var.inbound_bucket_arn}/${var.historian_upload_prefix}*"]
  }

  # verify_backfill marks the job succeeded.
  statement {
    sid       = "RecordVerifiedBackfills"
    actions   = ["dynamodb:UpdateItem"]
    resources = [var.bridge_jobs_table_arn]
  }

  # verify_backfill's HeadObject of an upload that never came must answer 404 (IntegrityError: the
  # file does not exist), which S3 only does for callers with s3:ListBucket; a 403 would be retried
  # as a transient error. HeadObject carries no s3:prefix for a condition to match.
  statement {
    sid       = "ListInbound"
    actions   = ["s3:ListBucket"]
    resources = [var.inbound_bucket_arn]
  }

  statement {
    sid       = "ConsumeBridgeJobs"
    actions   = local.consume_actions
    resources = [var.bridge_jobs_queue_arn]
  }
}

# dispatch_site_jobs: publishes one attempt of a site job on <root>/<tenant>/<worker>/jobs through
# IoT Core (iot-data Publish, QoS 1) after recording the attempt's token digest; a failed publish
# answers the Task with SendTaskFailure (DispatchFailed) at once.
data "aws_iam_policy_document" "site_dispatcher" {
  source_policy_documents = [data.aws_iam_policy_document.common["site_dispatcher"].json]

  statement {
    sid       = "PublishSiteJobs"
    actions   = ["iot:Publish"]
    resources = [local.site_jobs_topic_arn]
  }

  statement {
    sid       = "RecordDispatches"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [var.bridge_jobs_table_arn]
  }

  # The task-token APIs have no resource type: AWS requires Resource "*" (see the common policy).
  statement {
    sid       = "FailUndispatchableTasks"
    actions   = ["states:SendTaskFailure"]
    resources = ["*"]
  }

  statement {
    sid       = "ConsumeSiteDispatch"
    actions   = local.consume_actions
    resources = [var.site_dispatch_queue_arn]
  }
}

# handle_site_messages: what sites publish (results, progress, heartbeats), as the IoT rules put
# it on the site-messages queue. A message is accepted only from the job's own site and with the
# token of the job's current attempt; it becomes SendTaskSuccess, SendTaskFailure or
# SendTaskHeartbeat, and progress is stored on the job.
data "aws_iam_policy_document" "site_messages" {
  source_policy_documents = [data.aws_iam_policy_document.common["site_messages"].json]

  statement {
    sid       = "ReadAndUpdateJobs"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [var.bridge_jobs_table_arn]
  }

  statement {
    sid       = "ConsumeSiteMessages"
    actions   = local.consume_actions
    resources = [var.site_messages_queue_arn]
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
  #checkov:skip=CKV_AWS_116:The API is invoked synchronously by API Gateway and the workers by SQS event source mappings, whose failed messages go to the source queue's DLQ (redrive policy). Only the input adapter scheduler is invoked asynchronously (EventBridge schedule), and a failed tick needs no dead letter: the next tick repeats it, so its retries are off (aws_lambda_function_event_invoke_config).
  #checkov:skip=CKV_AWS_117:The functions only call public endpoints (S3, SQS, DynamoDB, Step Functions, Athena, Glue, EventBridge, Secrets Manager, IoT Core's data endpoint, the HES API and its public SFTP server) and reach nothing inside a VPC; a VPC would add NAT or interface endpoints and cold-start cost without isolating anything.
  #checkov:skip=CKV_AWS_272:Code signing applies to zip packages only; these functions run a container image pinned by digest (image_uri), whose repository has immutable tags and scan on push.
  for_each = local.functions

  function_name                  = each.value.name
  description                    = "Meterflow ${each.key} (Chalice handler ${each.value.handler})"
  role                           = aws_iam_role.this[each.key].arn
  package_type                   = "Image"
  image_uri                      = var.image_uri
  architectures                  = [var.architecture]
  timeout                        = each.value.timeout
  memory_size                    = each.value.memory_size
  reserved_concurrent_executions = each.value.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  # One image, one handler per function (the Chalice app's entry points).
  image_config {
    command = [each.value.handler]
  }

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

# EventBridge invokes the scheduler asynchronously. A failed or late tick is not retried: the next
# tick, scheduler_rate_minutes later, finds the same due integrations.
resource "aws_lambda_function_event_invoke_config" "input_adapter_scheduler" {
  function_name                = aws_lambda_function.this["input_adapter_scheduler"].function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 60
}
