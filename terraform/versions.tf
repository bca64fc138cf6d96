terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
  }

  # The state holds no secret (the SFTP key pair is made by `meterflow sftp rotate-key`), but it
  # names every resource: keep it in an encrypted, access-controlled backend, configured at init,
  #   terraform init -backend-config=backend.hcl
  # with a backend "s3" block added here (see README.md, "State").
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}
