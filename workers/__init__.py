"""Job code, one module per feature: job type -> use case, run by ``meterflow.aws.task_runner`` for the
workflows that dispatch them with task tokens."""
