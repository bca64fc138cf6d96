output "queue_urls" {
  description = "URLs of the work queues by stack key."
  value       = { for key, queue in aws_sqs_queue.this : key => queue.url }
}

output "queue_arns" {
  description = "ARNs of the work queues by stack key."
  value       = { for key, queue in aws_sqs_queue.this : key => queue.arn }
}

output "policy_attached_queue_arns" {
  description = "ARNs of the work queues by stack key, known only once every queue policy is in place: for senders whose setup the service validates against the policy (S3 event notifications)."
  value       = { for key, queue in aws_sqs_queue.this : key => queue.arn }

  depends_on = [aws_sqs_queue_policy.this]
}

output "queue_names" {
  description = "Names of the work queues by stack key."
  value       = { for key, queue in aws_sqs_queue.this : key => queue.name }
}

output "dlq_urls" {
  description = "URLs of the dead-letter queues by stack key."
  value       = { for key, queue in aws_sqs_queue.dlq : key => queue.url }
}

output "dlq_arns" {
  description = "ARNs of the dead-letter queues by stack key."
  value       = { for key, queue in aws_sqs_queue.dlq : key => queue.arn }
}
