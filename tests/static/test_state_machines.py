"""The state machine definitions (state_machines/*.asl.json), as files: what no deployment shows.

Terraform renders them with templatefile() and tests/deploy compares the applied definitions with
the ones the local runtime renders; these tests check the files themselves.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from meterflow.localcloud.stack import StateMachineSpec, stack_spec, template_variables

MACHINES = stack_spec().state_machines


def task_state_problems(states: dict[str, Any], enclosing_catch: bool = False, path: str = "") -> list[str]:
    """Tasks without TimeoutSeconds, Retry, or a Catch (their own or their enclosing Map's)."""
    problems: list[str] = []
    for name, state in states.items():
        where = f"{path}{name}"
        if state["Type"] == "Task":
            problems += [f"{where}: no {key}" for key in ("TimeoutSeconds", "Retry") if not state.get(key)]
            if not state.get("Catch") and not enclosing_catch:
                problems.append(f"{where}: no Catch (and no enclosing Map with one)")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if state["Type"] == "Map" and processor:
            problems += task_state_problems(processor["States"], bool(state.get("Catch")), f"{where}/")
        for index, branch in enumerate(state.get("Branches", [])):
            problems += task_state_problems(branch["States"], bool(state.get("Catch")), f"{where}[{index}]/")
    return problems


def test_there_are_state_machines() -> None:
    assert len(MACHINES) >= 4


@pytest.mark.parametrize("machine", MACHINES, ids=lambda machine: machine.key)
def test_every_task_has_timeout_retry_and_catch(machine: StateMachineSpec) -> None:
    # GIVEN a definition rendered exactly as Terraform's templatefile renders it
    definition = json.loads(machine.render())
    # WHEN walking its states, into Map item processors and Parallel branches
    problems = task_state_problems(definition["States"])
    # THEN every Task is bounded in time, retried and caught
    assert definition["States"]
    assert problems == []


def test_task_check_finds_an_unbounded_task() -> None:
    # GIVEN a Map whose inner Task has no timeout and which has no Catch
    states = {
        "Chunks": {
            "Type": "Map",
            "ItemProcessor": {
                "States": {"Work": {"Type": "Task", "Retry": [{"ErrorEquals": ["States.ALL"]}]}}
            },
        }
    }
    # WHEN checking it
    problems = task_state_problems(states)
    # THEN both omissions are reported
    assert problems == [
        "Chunks/Work: no TimeoutSeconds",
        "Chunks/Work: no Catch (and no enclosing Map with one)",
    ]


@pytest.mark.parametrize("machine", MACHINES, ids=lambda machine: machine.key)
def test_template_variables_are_the_placeholders_of_the_definition(machine: StateMachineSpec) -> None:
    # GIVEN a state machine of the spec and its definition file
    # WHEN comparing the variables stack.py passes with the placeholders of the file
    placeholders = template_variables(machine.definition_file)
    # THEN they are the same set (none missing, none stale)
    assert placeholders
    assert set(machine.template_vars) == placeholders
