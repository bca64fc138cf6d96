"""Terraform itself refuses bad settings: variable validations and resource preconditions.

Each case is a value (or a combination) the stack must not accept. ``terraform plan -refresh=false``
in the applied stack's working copy evaluates them for real: validations before anything is read,
preconditions while the plan is made. A plan costs 10-30 s (the aws provider loads its schema), so
the cases are planned in two groups, one plan each: Terraform reports every failed validation and
every failed precondition of a plan, each with the variable or resource it concerns, and each case
asserts its own diagnostic. The values of a group do not interact (no case's value makes another
case's check pass or fail), so each case would be refused on its own too.

A plan with the Python defaults of the tuning passes, so the refusals come from the values.

This file sorts before test_terraform_apply.py, whose last test destroys the stack.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from meterflow.localcloud.stack import BridgeTuning, ExportTuning, LakeTuning
from tests.deploy.conftest import AppliedStack
from tests.support.terraform import tuning_variables

pytestmark = pytest.mark.deploy

PLAN = ("plan", "-refresh=false", "-input=false", "-no-color", "-lock-timeout=60s")
VALIDATION = "validation"
PRECONDITION = "precondition"


@dataclass(frozen=True)
class Refusal:
    group: str
    variables: Mapping[str, Any]
    where: str  # what the diagnostic points at: 'variable "x"' or 'resource "type" "name"'
    message: str  # the error_message, whitespace-normalized


REFUSALS = [
    # Variable validations
    pytest.param(
        Refusal(
            VALIDATION,
            {"stack_name": "a-stack-name-that-is-far-too-long-for-s3"},
            'variable "stack_name"',
            "3-32 characters of a-z, 0-9 and '-'",
        ),
        id="stack-name",
    ),
    pytest.param(
        Refusal(
            VALIDATION,
            {"chunk_timeout_seconds": 901},
            'variable "chunk_timeout_seconds"',
            "from 30 to 900 (Lambda's maximum timeout)",
        ),
        id="lambda-limit",
    ),
    pytest.param(
        Refusal(
            VALIDATION,
            {"stage_timeout_seconds": 901},
            'variable "stage_timeout_seconds"',
            "from 30 to 900 (Lambda's maximum timeout)",
        ),
        id="lake-lambda-limit",
    ),
    pytest.param(
        Refusal(
            VALIDATION,
            {"fixed_now": "yesterday"},
            'variable "fixed_now"',
            "null, or HES time format YYYY-MM-DD HH:MM:SS.ffffff.",
        ),
        id="hes-time",
    ),
    pytest.param(
        Refusal(
            VALIDATION,
            {"athena_bytes_scanned_cutoff_per_query": 1024},
            'variable "athena_bytes_scanned_cutoff_per_query"',
            "at least 10485760 (10 MB, Athena's minimum)",
        ),
        id="athena-cutoff",
    ),
    pytest.param(
        Refusal(
            VALIDATION,
            {"alert_email_addresses": ["ops"]},
            'variable "alert_email_addresses"',
            "E-mail addresses.",
        ),
        id="email",
    ),
    pytest.param(
        Refusal(
            VALIDATION,
            {"site_max_attempts": 6},
            'variable "site_max_attempts"',
            "A whole number from 0 to 5.",
        ),
        id="site-attempts",
    ),
    pytest.param(
        Refusal(
            VALIDATION,
            {"site_timeout_seconds": 86400},
            'variable "site_timeout_seconds"',
            "from 60 to 43200 (12 h, the lifetime of the presigned upload URL)",
        ),
        id="site-timeout",
    ),
    # Preconditions of the state machines (the deployment's tuning: chunk timeout 300 s, compact
    # timeout 700 s, worker heartbeat 15 s, site timeout 1800 s, retry interval 10 s)
    pytest.param(
        Refusal(
            PRECONDITION,
            {"chunk_heartbeat_seconds": 600},
            'resource "aws_sfn_state_machine" "this"',
            "chunk_heartbeat_seconds must be shorter than chunk_timeout_seconds.",
        ),
        id="heartbeat",
    ),
    pytest.param(
        Refusal(
            PRECONDITION,
            {"compact_heartbeat_seconds": 900},
            'resource "aws_sfn_state_machine" "lake_ingest"',
            "compact_heartbeat_seconds must be shorter than compact_timeout_seconds.",
        ),
        id="lake-heartbeat",
    ),
    pytest.param(
        Refusal(
            PRECONDITION,
            {"transfer_heartbeat_seconds": 10},
            'resource "aws_sfn_state_machine" "input_adapter"',
            "heartbeat_interval_seconds must be shorter than transfer_heartbeat_seconds.",
        ),
        id="worker-heartbeat",
    ),
    # 20000 s: longer than both the deployment's site timeout and the upload-lifetime case's
    pytest.param(
        Refusal(
            PRECONDITION,
            {"site_heartbeat_seconds": 20000},
            'resource "aws_sfn_state_machine" "historian_backfill"',
            "site_heartbeat_seconds must be shorter than site_timeout_seconds.",
        ),
        id="site-heartbeat",
    ),
    # 3 attempts x 4 h + retry waits > the 12 h the presigned upload URL lives
    pytest.param(
        Refusal(
            PRECONDITION,
            {"site_timeout_seconds": 14400, "site_max_attempts": 2},
            'resource "aws_sfn_state_machine" "historian_backfill"',
            "(site_max_attempts + 1) x site_timeout_seconds plus the retry waits must fit in the 12 h "
            "lifetime of the presigned upload URL.",
        ),
        id="site-upload-url-lifetime",
    ),
]


def var_arguments(variables: Mapping[str, Any]) -> list[str]:
    """``-var name=value`` for each variable (lists and numbers in HCL/JSON syntax)."""
    arguments = []
    for name, value in variables.items():
        arguments += ["-var", f"{name}={value if isinstance(value, str) else json.dumps(value)}"]
    return arguments


def diagnostics(output: str) -> list[str]:
    """The ``Error:`` diagnostics of a ``-no-color`` run, each on one line (whitespace collapsed)."""
    return [" ".join(block.split()) for block in re.split(r"^Error: ", output, flags=re.MULTILINE)[1:]]


@dataclass(frozen=True)
class GroupPlan:
    variables: Mapping[str, Any]
    completed: subprocess.CompletedProcess[str]

    @property
    def diagnostics(self) -> list[str]:
        return diagnostics(self.completed.stderr)


def _group_variables(group: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for param in REFUSALS:
        (refusal,) = param.values
        assert isinstance(refusal, Refusal)
        if refusal.group != group:
            continue
        clashes = set(merged) & set(refusal.variables)
        assert not clashes, f"cases of the {group} group set {clashes} twice: give them other values"
        merged.update(refusal.variables)
    return merged


@pytest.fixture(scope="module")
def group_plans(applied_stack: AppliedStack) -> dict[str, GroupPlan]:
    """One plan per group, with every value of the group (run once, read by each case)."""
    plans = {}
    for group in (VALIDATION, PRECONDITION):
        variables = _group_variables(group)
        completed = applied_stack.terraform.run(*PLAN, *var_arguments(variables), check=False)
        plans[group] = GroupPlan(variables, completed)
    return plans


def python_default_tuning() -> dict[str, Any]:
    """The tuning variables at meterflow/localcloud/stack.py's defaults (which are the variables' defaults:
    tests/static/test_terraform_defaults.py)."""
    return tuning_variables(ExportTuning(), LakeTuning(), BridgeTuning())


def test_default_tuning_passes_validations_and_preconditions(applied_stack: AppliedStack) -> None:
    # GIVEN the applied stack's working copy with every tuning variable at its default
    variables = python_default_tuning()
    assert len(variables) >= 20
    # WHEN planning
    completed = applied_stack.terraform.run(
        *PLAN, "-detailed-exitcode", *var_arguments(variables), check=False
    )
    # THEN the plan is made (0: no change, 2: changes): no validation or precondition refuses it
    assert completed.returncode in (0, 2), completed.stderr[-4000:]
    assert diagnostics(completed.stderr) == []


@pytest.mark.parametrize("refusal", REFUSALS)
def test_invalid_settings_are_refused(group_plans: dict[str, GroupPlan], refusal: Refusal) -> None:
    # GIVEN a plan with this value (and the other values of its group)
    plan = group_plans[refusal.group]
    assert all(plan.variables[name] == value for name, value in refusal.variables.items())
    # WHEN Terraform evaluates the validations and preconditions
    # THEN the plan fails, with a diagnostic for this value's variable or resource and message
    assert plan.completed.returncode == 1, plan.completed.stdout[-3000:]
    kind = "Invalid value for variable" if refusal.group == VALIDATION else "Resource precondition failed"
    matching = [
        diagnostic
        for diagnostic in plan.diagnostics
        if diagnostic.startswith(kind) and refusal.where in diagnostic and refusal.message in diagnostic
    ]
    assert len(matching) == 1, "\n".join(plan.diagnostics)


def test_each_refusal_is_reported_once(group_plans: dict[str, GroupPlan]) -> None:
    # GIVEN the plans of both groups
    # WHEN counting their diagnostics
    counts = {group: len(plan.diagnostics) for group, plan in group_plans.items()}
    # THEN there is one per case: no value is refused for another reason than its own
    expected: dict[str, int] = {}
    for param in REFUSALS:
        (refusal,) = param.values
        assert isinstance(refusal, Refusal)
        expected[refusal.group] = expected.get(refusal.group, 0) + 1
    assert counts == expected, {group: plan.diagnostics for group, plan in group_plans.items()}
