terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }

  # The state holds the SFTP user's private key (tls_private_key): use an encrypted,
  # access-controlled backend. Configure it at init time, e.g.
  #   terraform init -backend-config=backend.hcl
  # with a backend "s3" block added here (see README.md, "State").
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}
