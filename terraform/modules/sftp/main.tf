# AWS Transfer Family SFTP server with one service-managed, read-only user whose logical home "/"
# is the exports prefix of the bucket. The user's key pair is generated here and its private key is
# stored in Secrets Manager as "<stack>/sftp/private_key" (seed 000: retrieve it, chmod 400, sftp -i).
#
# The private key is also in the Terraform state (tls_private_key): keep the state in an encrypted,
# access-controlled backend (terraform/README.md).

locals {
  home_prefix = trimsuffix(var.home_prefix, "/")
}

resource "tls_private_key" "user" {
  algorithm = "RSA"
  rsa_bits  = 3072
}

resource "aws_secretsmanager_secret" "private_key" {
  #checkov:skip=CKV2_AWS_57:Rotating this secret means replacing the key pair and the user's SSH key together and telling the HES consumer; that is done with `terraform apply -replace=module.sftp.tls_private_key.user`, not with a rotation Lambda.
  name                    = var.secret_name
  description             = var.secret_description
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "private_key" {
  secret_id     = aws_secretsmanager_secret.private_key.id
  secret_string = tls_private_key.user.private_key_pem
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

resource "aws_transfer_ssh_key" "this" {
  server_id = aws_transfer_server.this.id
  user_name = aws_transfer_user.this.user_name
  body      = trimspace(tls_private_key.user.public_key_openssh)
}
