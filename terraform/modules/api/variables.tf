variable "name" {
  description = "Name of the REST API."
  type        = string
}

variable "routes" {
  description = "Routes of the Chalice app: HTTP method and path of one to three segments, a segment being a name or a path parameter in braces (e.g. GET /readings/file, GET /lake/queries/{name})."
  type = list(object({
    method = string
    path   = string
  }))

  validation {
    condition = alltrue([
      for route in var.routes :
      contains(["GET", "POST", "PUT", "PATCH", "DELETE"], route.method)
      && can(regex("^(/([A-Za-z0-9_-]+|[{][A-Za-z0-9_]+[}])){1,3}$", route.path))
      && !startswith(route.path, "/{")
    ])
    error_message = "Methods are GET, POST, PUT, PATCH or DELETE; paths are one to three segments (/segment, /segment/{parameter}, ...), the first one not a parameter."
  }

  validation {
    condition     = length(var.routes) == length(distinct([for route in var.routes : "${route.method} ${route.path}"]))
    error_message = "Each method and path pair appears once."
  }
}

variable "invoke_grants" {
  description = "IAM roles that may call routes of this API with SigV4 (execute-api:Invoke on the stage), by grant key: the role's name and the routes, as \"METHOD /path\" of var.routes without path parameters."
  type = map(object({
    role_name = string
    routes    = list(string)
  }))
  default = {}

  validation {
    condition     = alltrue(flatten([for grant in values(var.invoke_grants) : [for route in grant.routes : can(regex("^(GET|POST|PUT|PATCH|DELETE) (/[A-Za-z0-9_-]+){1,3}$", route))]]))
    error_message = "Routes are \"METHOD /path\" without path parameters."
  }
}

variable "function_name" {
  description = "Name of the Lambda function behind every route."
  type        = string
}

variable "function_invoke_arn" {
  description = "Invoke ARN of the Lambda function behind every route."
  type        = string
}

variable "stage_name" {
  description = "Name of the stage (seed 000: apiGatewayInvokeURL ends in /prod)."
  type        = string
  default     = "prod"
}

variable "throttling_burst_limit" {
  description = "Burst limit of every method of the stage (requests)."
  type        = number
  default     = 100

  validation {
    condition     = var.throttling_burst_limit >= 0
    error_message = "The burst limit is not negative."
  }
}

variable "throttling_rate_limit" {
  description = "Steady-state rate limit of every method of the stage (requests per second)."
  type        = number
  default     = 50

  validation {
    condition     = var.throttling_rate_limit >= 0
    error_message = "The rate limit is not negative."
  }
}

variable "execution_logging_level" {
  description = "API Gateway execution logging level (needs an account-level CloudWatch role, see create_cloudwatch_role)."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["OFF", "ERROR", "INFO"], var.execution_logging_level)
    error_message = "OFF, ERROR or INFO."
  }
}

variable "create_cloudwatch_role" {
  description = "Create the account-level (per region) CloudWatch Logs role of API Gateway; false when the account already has one."
  type        = bool
  default     = true
}

variable "access_log_group_name" {
  description = "Name of the CloudWatch log group of the stage's access logs."
  type        = string
}

variable "log_retention_in_days" {
  description = "Retention of the access logs."
  type        = number
}

variable "kms_key_arn" {
  description = "ARN of the stack's KMS key (access log group encryption)."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"
}

variable "tags" {
  description = "Tags for the API, stage, role and log group."
  type        = map(string)
  default     = {}
}
