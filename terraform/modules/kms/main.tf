# One customer-managed key for the whole stack: S3 objects, SQS messages, DynamoDB items, the SFTP
# secret, Lambda environment variables and every CloudWatch log group are encrypted with it.

locals {
  account_root_arn = "arn:${var.partition}:iam::${var.account_id}:root"
  log_group_arns   = [for name in var.log_group_names : "arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:${name}"]
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:False positive for a key policy: "Resource: *" in a key policy means this key only, and the root statement is AWS's default delegation to IAM (without it the key could become unmanageable).
  #checkov:skip=CKV_AWS_111:False positive for a key policy: write actions apply to this key only; the stack's roles get narrow, kms:ViaService-scoped use through their IAM policies.
  #checkov:skip=CKV_AWS_356:False positive for a key policy: a key policy can only name the key it is attached to, and it does so as "*".


  # AWS's default key policy statement: IAM policies in this account decide who may use the key.
  # The stack's roles get kms:Decrypt/GenerateDataKey only through kms:ViaService-scoped statements.
  statement {
    sid       = "EnableIamPoliciesOfThisAccount"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root_arn]
    }
  }

  dynamic "statement" {
    for_each = length(var.administrator_arns) > 0 ? [1] : []

    content {
      sid    = "KeyAdministrators"
      effect = "Allow"
      actions = [
        "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
        "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
        "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
      ]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.administrator_arns
      }
    }
  }

  # CloudWatch Logs is the one service that uses the key as itself (not on behalf of an IAM
  # principal), so it needs a key-policy grant, limited to this stack's log groups.
  statement {
    sid    = "CloudWatchLogsForThisStacksLogGroups"
    effect = "Allow"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = local.log_group_arns
    }
  }

  # S3 event notifications and EventBridge targets send to encrypted queues as the service itself,
  # not on behalf of an IAM principal, so they need a key-policy grant too. SQS binds every data key
  # to its queue (encryption context aws:sqs:arn): the grant covers the named queues only.
  dynamic "statement" {
    for_each = var.queue_service_senders

    content {
      sid       = statement.key
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = [statement.value.service]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:sqs:arn"
        values   = statement.value.queue_arns
      }
    }
  }

  # CloudWatch alarms publish to the encrypted alerts topic as the CloudWatch service: data keys
  # for that topic only (SNS binds each to its topic, encryption context aws:sns:topicArn).
  statement {
    sid       = "CloudWatchAlarmsToAlertTopics"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:sns:topicArn"
      values   = var.alarm_topic_arns
    }
  }

  # SQS, S3, DynamoDB, SNS, Secrets Manager, Lambda, Athena and Step Functions use the key on behalf
  # of the calling principal (kms:ViaService); the stack's IAM roles carry those permissions.
}

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = true
  rotation_period_in_days = var.rotation_period_in_days
  deletion_window_in_days = var.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.key.json

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  name          = var.alias
  target_key_id = aws_kms_key.this.key_id
}
