output "queue_urls" {
  description = "URLs of the work queues by stack key."
  value       = { for key, queue in aws_sqs_queue.this : key => queue.url }
}

output "queue_arns" {
  description = "ARNs of the work queues by stack key."
  value       = { for key, queue in aws_sqs_queue.this : key => queue.arn }
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
