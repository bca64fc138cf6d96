# AWS Transfer Family SFTP server with one service-managed, read-only user whose logical home "/"
# is the exports prefix of the bucket. The secret "<stack>/sftp/private_key" is declared here, empty:
# the key pair is made outside Terraform by `meterflow sftp rotate-key`, which writes the private key
# to the secret and registers the public key with the user (seed 000: retrieve it, chmod 400,
# sftp -i). No private key ever enters the Terraform state.

locals {
  home_prefix = trimsuffix(var.home_prefix, "/")
}

resource "aws_secretsmanager_secret" "private_key" {
  #checkov:skip=CKV2_AWS_57:Rotating this secret means replacing the key pair and the user's SSH key together and telling the HES consumer; that is done with `meterflow sftp rotate-key` (terraform/README.md), not with a rotation Lambda.
  name                    = var.secret_name
  description             = var.secret_description
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "transfer_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["transfer.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }
}

# Logging role: Transfer Family writes its per-server logs to /aws/transfer/<server-id> with it
# (the server id is only known after creation, hence the prefix).
data "aws_iam_policy_document" "logging" {
  statement {
    sid = "ServerLogs"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
    ]
    resources = [
      "arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:/aws/transfer/*",
      "arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:/aws/transfer/*:log-stream:*",
    ]
  }
}

resource "aws_iam_role" "logging" {
  name               = "${var.server_name}-logging"
  assume_role_policy = data.aws_iam_policy_document.transfer_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "logging" {
  name   = "${var.server_name}-logging"
  role   = aws_iam_role.logging.id
  policy = data.aws_iam_policy_document.logging.json
}

resource "aws_transfer_server" "this" {
  #checkov:skip=CKV_AWS_164:The HES contract (seed 000) is a public SFTP endpoint for the utility's download client. Access is key-only, for one read-only user, with structured logging; a VPC endpoint with allow-listed IPs is the hardening step when the consumer's addresses are known.
  endpoint_type               = "PUBLIC"
  identity_provider_type      = "SERVICE_MANAGED"
  protocols                   = ["SFTP"]
  domain                      = "S3"
  security_policy_name        = var.security_policy_name
  logging_role                = aws_iam_role.logging.arn
  structured_log_destinations = ["${aws_cloudwatch_log_group.this.arn}:*"]

  tags = merge(var.tags, { Name = var.server_name })
}

# ---------------------------------------------------------------------------------------------
# User: read-only on <bucket>/<home_prefix>/
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "user" {
  statement {
    sid       = "ListExports"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.home_prefix}/", "${local.home_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadExports"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arn}/${local.home_prefix}/*"]
  }

  statement {
    sid       = "DecryptExports"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "user" {
  name               = "${var.server_name}-user"
  assume_role_policy = data.aws_iam_policy_document.transfer_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "user" {
  name   = "${var.server_name}-user-read-exports"
  role   = aws_iam_role.user.id
  policy = data.aws_iam_policy_document.user.json
}

resource "aws_transfer_user" "this" {
  server_id           = aws_transfer_server.this.id
  user_name           = var.user_name
  role                = aws_iam_role.user.arn
  home_directory_type = "LOGICAL"

  home_directory_mappings {
    entry  = "/"
    target = "/${var.bucket_name}/${local.home_prefix}"
  }

  tags = var.tags
}

# The user's SSH public key is registered by `meterflow sftp rotate-key`, with its private key.
