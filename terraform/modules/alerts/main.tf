# The alerts topic: the input adapter publishes a message when an integration run fails
# (state_machines/input_adapter.asl.json, NotifyFailure). Encrypted with the stack key; e-mail
# subscriptions are optional (var.email_addresses, each confirmed by its recipient).

locals {
  topic_arn = "arn:${var.partition}:sns:${var.region}:${var.account_id}:${var.name}"
}

resource "aws_sns_topic" "this" {
  name              = var.name
  display_name      = var.display_name
  kms_master_key_id = var.kms_key_arn

  tags = var.tags
}

# Replaces SNS's default policy: this account's IAM policies decide who publishes and subscribes
# (the input adapter's role has sns:Publish on this topic), and only over TLS.
data "aws_iam_policy_document" "this" {
  statement {
    sid = "ThisAccountThroughIam"
    actions = [
      "sns:Publish",
      "sns:Subscribe",
      "sns:Receive",
      "sns:GetTopicAttributes",
      "sns:SetTopicAttributes",
      "sns:ListSubscriptionsByTopic",
      "sns:AddPermission",
      "sns:RemovePermission",
      "sns:DeleteTopic",
    ]
    resources = [local.topic_arn]

    principals {
      type        = "AWS"
      identifiers = ["arn:${var.partition}:iam::${var.account_id}:root"]
    }
  }

  # CloudWatch alarms publish as the CloudWatch service, not as an IAM principal of this account:
  # only this account's alarms of this stack.
  statement {
    sid       = "CloudWatchAlarmsOfThisStack"
    actions   = ["sns:Publish"]
    resources = [local.topic_arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${var.partition}:cloudwatch:${var.region}:${var.account_id}:alarm:${var.alarm_name_prefix}*"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [local.topic_arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.email_addresses)

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = each.value
}
