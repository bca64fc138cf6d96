# REST API with one explicit resource and method per Chalice route. Chalice routes a proxy event
# by its resourcePath, so the resources here must be exactly the route paths of the Chalice app
# (tests/deploy compares the applied API with them).

locals {
  routes = { for route in var.routes : "${route.method} ${route.path}" => route }

  # "/lake/queries/{name}" -> ["lake", "queries", "{name}"]; paths of one to three segments
  # (validated), each resource keyed by its path without the leading "/".
  route_segments = { for key, route in local.routes : key => split("/", trimprefix(route.path, "/")) }
  level1_paths   = toset([for segments in values(local.route_segments) : segments[0]])
  level2_paths   = toset([for segments in values(local.route_segments) : "${segments[0]}/${segments[1]}" if length(segments) >= 2])
  level3_paths   = toset([for segments in values(local.route_segments) : join("/", segments) if length(segments) == 3])

  resource_ids = merge(
    { for path, resource in aws_api_gateway_resource.level1 : "/${path}" => resource.id },
    { for path, resource in aws_api_gateway_resource.level2 : "/${path}" => resource.id },
    { for path, resource in aws_api_gateway_resource.level3 : "/${path}" => resource.id },
  )

  # Path parameters ("{name}") of each route: declared on the method, "*" in the invoke permission.
  path_parameters = {
    for key, segments in local.route_segments :
    key => [for segment in segments : trimsuffix(trimprefix(segment, "{"), "}") if startswith(segment, "{")]
  }

  access_log_format = jsonencode({
    requestId          = "$context.requestId"
    extendedRequestId  = "$context.extendedRequestId"
    ip                 = "$context.identity.sourceIp"
    caller             = "$context.identity.caller"
    user               = "$context.identity.user"
    userArn            = "$context.identity.userArn"
    requestTime        = "$context.requestTime"
    httpMethod         = "$context.httpMethod"
    resourcePath       = "$context.resourcePath"
    status             = "$context.status"
    protocol           = "$context.protocol"
    responseLength     = "$context.responseLength"
    integrationLatency = "$context.integration.latency"
    integrationStatus  = "$context.integration.status"
    errorMessage       = "$context.error.message"
    xrayTraceId        = "$context.xrayTraceId"
  })
}

resource "aws_api_gateway_rest_api" "this" {
  name        = var.name
  description = "Meterflow HES API (routes of the Chalice app, IAM-authorised)."

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "level1" {
  for_each = local.level1_paths

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = each.value
}

resource "aws_api_gateway_resource" "level2" {
  for_each = local.level2_paths

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.level1[split("/", each.value)[0]].id
  path_part   = split("/", each.value)[1]
}

resource "aws_api_gateway_resource" "level3" {
  for_each = local.level3_paths

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.level2["${split("/", each.value)[0]}/${split("/", each.value)[1]}"].id
  path_part   = split("/", each.value)[2]
}

resource "aws_api_gateway_method" "this" {
  #checkov:skip=CKV2_AWS_53:Request validation lives in the Chalice app, which answers with the seed-000 error contract in AWS and in the local runtime alike; an API Gateway validator would answer differently in AWS only.
  for_each = local.routes

  rest_api_id   = aws_api_gateway_rest_api.this.id
  resource_id   = local.resource_ids[each.value.path]
  http_method   = each.value.method
  authorization = "AWS_IAM"

  request_parameters = { for name in local.path_parameters[each.key] : "method.request.path.${name}" => true }
}

resource "aws_api_gateway_integration" "this" {
  for_each = local.routes

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = aws_api_gateway_method.this[each.key].resource_id
  http_method             = aws_api_gateway_method.this[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.function_invoke_arn
}

resource "aws_lambda_permission" "this" {
  for_each = local.routes

  statement_id  = "AllowApiGateway-${each.value.method}-${replace(replace(replace(trimprefix(each.value.path, "/"), "/", "-"), "{", ""), "}", "")}"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  principal     = "apigateway.amazonaws.com"
  # A path parameter matches any value: "/lake/queries/{name}" -> "/lake/queries/*".
  source_arn = "${aws_api_gateway_rest_api.this.execution_arn}/*/${each.value.method}/${join("/", [for segment in local.route_segments[each.key] : startswith(segment, "{") ? "*" : segment])}"
}

# Callers inside the stack sign their requests (SigV4): the lake worker calls the HES API to request
# files and poll their status. Each grant is an inline policy on the caller's role, naming the
# stage and routes it may invoke.
data "aws_iam_policy_document" "invoke" {
  for_each = var.invoke_grants

  statement {
    sid       = "InvokeRoutes"
    actions   = ["execute-api:Invoke"]
    resources = [for route in each.value.routes : "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/${replace(route, " ", "")}"]
  }
}

resource "aws_iam_role_policy" "invoke" {
  for_each = var.invoke_grants

  name   = "${var.name}-invoke-${each.key}"
  role   = each.value.role_name
  policy = data.aws_iam_policy_document.invoke[each.key].json
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  # The provider reads request_parameters back as {} where it created null: hashing it as given
  # would replace the deployment on every plan.
  triggers = {
    redeployment = sha1(jsonencode([
      var.routes,
      [
        for method in aws_api_gateway_method.this :
        [method.id, method.authorization, method.request_parameters == null ? {} : method.request_parameters]
      ],
      [for integration in aws_api_gateway_integration.this : [integration.id, integration.uri]],
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [aws_api_gateway_integration.this]
}

resource "aws_cloudwatch_log_group" "access" {
  name              = var.access_log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

# API Gateway writes execution logs through one role per account and region. Creating it here is
# the default; turn it off when the account already has one (it is a regional singleton).
data "aws_iam_policy_document" "cloudwatch_assume" {
  count = var.create_cloudwatch_role ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cloudwatch" {
  count = var.create_cloudwatch_role ? 1 : 0

  name               = "${var.name}-apigw-cloudwatch"
  assume_role_policy = data.aws_iam_policy_document.cloudwatch_assume[0].json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "cloudwatch" {
  count = var.create_cloudwatch_role ? 1 : 0

  role       = aws_iam_role.cloudwatch[0].name
  policy_arn = "arn:${var.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = var.create_cloudwatch_role ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.cloudwatch[0].arn

  depends_on = [aws_iam_role_policy_attachment.cloudwatch]
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:Responses depend on the query string and are cheap to compute (readings are a pure function, O(page)); a cache cluster is billed per hour and would serve stale file-request statuses.
  #checkov:skip=CKV2_AWS_29:Every method requires SigV4 (AWS_IAM) and is throttled per stage; a WAF web ACL is a per-organisation choice and a fixed monthly cost, attach one outside this stack if wanted.
  #checkov:skip=CKV2_AWS_51:Callers authenticate with SigV4 (AWS_IAM); the backend is a Lambda proxy integration, not an HTTP backend that would check a client certificate.
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format          = local.access_log_format
  }

  tags = var.tags

  depends_on = [aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:No response caching, see the stage (query-dependent, cheap responses; stale file-request statuses).
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = var.execution_logging_level
    data_trace_enabled     = false
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
    caching_enabled        = false
  }
}
