"""boto3 adapters implementing the domain's ports. Each takes its client in the constructor."""
