# IoT Core side of the on-premises bridge: the thing type of the site workers, the policy that
# confines each worker to its own topics, and the topic rules that bring what sites publish to the
# site-messages queue. Things and certificates are provisioned per site, outside Terraform (a
# certificate's private key must never sit in the state): see terraform/README.md,
# "On-premises bridge".
#
# Topics (onprem_worker/contracts.py): <topic_root>/<tenant>/<worker>/<channel>. A worker's thing
# name is its worker id (and its MQTT client id); its tenant is the thing attribute "tenant".

locals {
  arn_prefix = "arn:${var.partition}:iot:${var.region}:${var.account_id}"

  # IoT policy variables, resolved per connection. "$${" is a literal "${" in Terraform strings.
  own_topic = "${var.topic_root}/$${iot:Connection.Thing.Attributes[tenant]}/$${iot:Connection.Thing.ThingName}"

  rule_names = { for channel in var.site_to_cloud_channels : channel => "${var.rule_name_prefix}_${channel}" }
  rule_arns  = [for name in values(local.rule_names) : "${local.arn_prefix}:rule/${name}"]
}

data "aws_iot_endpoint" "data" {
  endpoint_type = "iot:Data-ATS"
}

resource "aws_iot_thing_type" "worker" {
  name = var.thing_type_name

  properties {
    description           = "Meterflow on-premises worker: thing name = worker id = MQTT client id; attribute tenant."
    searchable_attributes = ["tenant"]
  }

  tags = var.tags
}

# What one worker may do, whoever it is: connect as its own thing (a registered thing of this type
# whose certificate it presents), take jobs and cancellations from its own topics and answer on its
# own topics. A thing without a "tenant" attribute matches no topic.
resource "aws_iot_policy" "worker" {
  name = var.policy_name

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ConnectAsOwnThing"
        Effect   = "Allow"
        Action   = "iot:Connect"
        Resource = "${local.arn_prefix}:client/$${iot:Connection.Thing.ThingName}"
        Condition = {
          Bool         = { "iot:Connection.Thing.IsAttached" = "true" }
          StringEquals = { "iot:Connection.Thing.ThingTypeName" = var.thing_type_name }
        }
      },
      {
        Sid      = "SubscribeToOwnJobs"
        Effect   = "Allow"
        Action   = "iot:Subscribe"
        Resource = [for channel in var.cloud_to_site_channels : "${local.arn_prefix}:topicfilter/${local.own_topic}/${channel}"]
      },
      {
        Sid      = "ReceiveOwnJobs"
        Effect   = "Allow"
        Action   = "iot:Receive"
        Resource = [for channel in var.cloud_to_site_channels : "${local.arn_prefix}:topic/${local.own_topic}/${channel}"]
      },
      {
        Sid      = "PublishOwnAnswers"
        Effect   = "Allow"
        Action   = "iot:Publish"
        Resource = [for channel in var.site_to_cloud_channels : "${local.arn_prefix}:topic/${local.own_topic}/${channel}"]
      },
    ]
  })

  tags = var.tags
}

# ---------------------------------------------------------------------------------------------
# Topic rules: every message a site publishes goes to the site-messages queue as
# {"topic": "<topic>", "payload": "<base64 of the MQTT payload>"} (meterflow/bridge/domain/jobs.py
# site_message_from_rule). A failed delivery goes to the queue's DLQ (the IoT error message:
# ruleName, topic, clientId, base64OriginalPayload, failures).
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "rules_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["iot.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = local.rule_arns
    }
  }
}

data "aws_iam_policy_document" "rules" {
  statement {
    sid       = "SendSiteMessages"
    actions   = ["sqs:SendMessage"]
    resources = [var.site_messages_queue_arn, var.error_queue_arn]
  }

  # Both queues are encrypted with the stack key: sending needs a data key.
  statement {
    sid       = "EncryptSiteMessages"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rules" {
  name               = var.rule_role_name
  assume_role_policy = data.aws_iam_policy_document.rules_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "rules" {
  name   = var.rule_role_name
  role   = aws_iam_role.rules.id
  policy = data.aws_iam_policy_document.rules.json
}

resource "aws_iot_topic_rule" "site_messages" {
  for_each = local.rule_names

  name        = each.value
  description = "Messages sites publish on ${var.topic_root}/+/+/${each.key}, to the site-messages queue."
  enabled     = true
  sql         = "SELECT encode(*, 'base64') AS payload, topic() AS topic FROM '${var.topic_root}/+/+/${each.key}'"
  sql_version = "2016-03-23"

  sqs {
    queue_url  = var.site_messages_queue_url
    role_arn   = aws_iam_role.rules.arn
    use_base64 = false
  }

  error_action {
    sqs {
      queue_url  = var.error_queue_url
      role_arn   = aws_iam_role.rules.arn
      use_base64 = false
    }
  }

  tags = var.tags

  # The role's policy must be in place before the first message is routed.
  depends_on = [aws_iam_role_policy.rules]
}
