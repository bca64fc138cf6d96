"""The Meterflow API and queue handlers (AWS Lambda via Chalice; locally, the same functions).

Each feature is one Blueprint (``chalicelib/<feature>.py``): its routes and handlers parse their
input, call one domain function and map the result or the error. Declaring a handler there is all
the local runtime needs: it reads the queues and schedules from :data:`app`'s registered event
sources. In AWS, Terraform's functions module runs each as ``app.<handler>`` (exported below).
"""

from __future__ import annotations

import logging
import os
import sys

from aws_xray_sdk.core import patch
from chalice.app import Chalice

from chalice_app.chalicelib.bridge import bridge
from chalice_app.chalicelib.hes import hes
from chalice_app.chalicelib.lake import lake
from meterflow.bridge.settings import BridgeSettings
from meterflow.core.settings import check_settings
from meterflow.hes.settings import HesSettings
from meterflow.lake.settings import LakeSettings

# Traces every AWS call; AWS_XRAY_SDK_ENABLED=false (the local runtime) turns the recorder off.
patch(["boto3", "botocore"])

# Chalice's own log handler would duplicate every "meterflow.*" record; Lambda's root handler suffices.
app = Chalice(app_name="meterflow", configure_logs=False)
logging.getLogger("meterflow").setLevel(os.environ.get("MF_LOG_LEVEL", "INFO"))

for blueprint in (hes, lake, bridge):
    app.register_blueprint(blueprint)

# Lambda runs a function of this module (handler "app.<name>"), so that this module's setup above
# always runs first; every registered event handler is exported here under its own name.
globals().update({source.name: app.handler_map[source.name] for source in app.event_sources})


def _only_inspected() -> bool:
    """True when the Chalice CLI imports the app only to read its routes (``chalice package``)."""
    if "chalice.cli" not in sys.modules:
        return False  # Lambda, the local cloud's API and workers: serving
    import click

    context = click.get_current_context(silent=True)
    return context is not None and context.command.name != "local"


# Serving without its settings, the app would answer 500 on every request: refuse to start instead,
# naming every missing variable.
if not _only_inspected():
    check_settings(HesSettings.from_env, LakeSettings.from_env, BridgeSettings.from_env)
