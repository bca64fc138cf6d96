"""The domain core: pure Python, numpy and pyarrow; no boto3, no chalice.

Every entry point (Chalice routes, SQS handlers, workers, the on-prem worker, the CLI) parses its
input into a contract from :mod:`meterflow.domain.contracts`, calls one function from here and maps
the result or the error.
"""
