"""The project's moto server (fidelity fixes on) in a process of its own.

moto keeps its state per process: two servers in one process share every backend. Tests that need
clouds apart from each other and from the in-process local cloud of the e2e suite start one here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import requests

from meterflow.aws.clients import AwsClients
from meterflow.localcloud.net import free_port

_SERVE = """
import os, sys, time
from moto.server import ThreadedMotoServer
from meterflow.localcloud import moto_fidelity
moto_fidelity.apply()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()  # until the parent closes stdin or goes away
server.stop()
"""
CREDENTIALS = {"aws_access_key_id": "meterflow-local", "aws_secret_access_key": "meterflow-local"}


@dataclass(frozen=True)
class MotoProcess:
    endpoint_url: str
    region: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url, **CREDENTIALS)  # type: ignore[call-overload]

    def clients(self) -> AwsClients:
        return AwsClients(
            s3=self.client("s3"),
            sqs=self.client("sqs"),
            dynamodb=self.client("dynamodb"),
            stepfunctions=self.client("stepfunctions"),
            secretsmanager=self.client("secretsmanager"),
            events=self.client("events"),
            sns=self.client("sns"),
            athena=self.client("athena"),
        )


@contextmanager
def moto_process(region: str = "us-east-1", execute_state_machines: bool = False) -> Iterator[MotoProcess]:
    port = free_port()
    # moto's Step Functions runner calls its own services at localhost:$MOTO_PORT
    # AWS-managed IAM policies exist in every account (the API's CloudWatch role attaches one)
    environment = {
        **os.environ,
        "MOTO_PORT": str(port),
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=environment,
        text=True,
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"moto server on port {port} did not start (exit {process.poll()})")
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        if execute_state_machines:
            requests.post(
                f"{endpoint}/moto-api/config",
                json={"stepfunctions": {"execute_state_machine": True}},
                timeout=10,
            ).raise_for_status()
        yield MotoProcess(endpoint, region)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
