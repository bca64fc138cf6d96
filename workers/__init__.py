"""Job code: workers that Step Functions dispatches with task tokens (see ``task_runner``)."""
