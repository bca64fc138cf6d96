# An example of the variables a deployment sets (copy, edit, pass with -var-file). Every other
# variable has a default that suits a first deployment; variables.tf describes each one.

stack_name = "meterflow"
region     = "eu-west-1"

# Filled in after `make image` (README.md, "Deploy to AWS"): the image URI pinned by digest.
# lambda_image_uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/meterflow/lambda@sha256:..."

# Who hears the alarms (each address confirms its subscription by e-mail).
alert_email_addresses = ["grid-operations@example.com"]

# Who may administer the stack's KMS key besides the account root (IAM role ARNs).
kms_key_administrator_arns = []

# A new account's Lambda concurrency limit is 10: leave every function unreserved there.
# api_reserved_concurrency = -1   (and the other *_reserved_concurrency variables)

# Where the buckets' access logs go (the organisation's log archive), or null for none.
access_logs_bucket_name = null

# The account already has API Gateway's CloudWatch role? Then leave it alone.
create_api_gateway_cloudwatch_role = true

tags = {
  owner       = "grid-data"
  cost-center = "meter-data"
}
