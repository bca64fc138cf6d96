"""Fidelity fixes for the embedded moto server, applied only where the project starts moto itself.

moto 5.2.5 drops the ``cause`` of SendTaskFailure before it reaches its Step Functions interpreter,
so a Catch sees ``"Cause": null`` where AWS (and LocalStack) pass the worker's message through.
Our failure reasons depend on it, so the embedded server gets the one-line fix.

moto also lists an execution as RUNNING a moment before (and after) its interpreter exists; a task
token answered in that moment fails with an AttributeError (HTTP 500) for every other execution.
Such executions cannot own the token, so they are skipped when answering tokens.
"""

from __future__ import annotations

from typing import Any


def apply() -> None:
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]

    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    list_executions = StepFunctionsParserBackend._get_executions

    def executions_with_interpreter(self: Any, execution_status: Any = None) -> Any:
        return [
            execution
            for execution in list_executions(self, execution_status)
            if getattr(execution, "exec_worker", True) is not None
        ]

    StepFunctionsParserBackend._get_executions = executions_with_interpreter  # type: ignore[method-assign]
