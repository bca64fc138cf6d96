"""Fidelity fixes for the embedded moto server, applied only where the project starts moto itself.

moto 5.2.5 drops the ``cause`` of SendTaskFailure before it reaches its Step Functions interpreter,
so a Catch sees ``"Cause": null`` where AWS (and LocalStack) pass the worker's message through.
Our failure reasons depend on it, so the embedded server gets the one-line fix.

moto also lists an execution as RUNNING a moment before (and after) its interpreter exists; a task
token answered in that moment fails with an AttributeError (HTTP 500) for every other execution.
Such executions cannot own the token, so they are skipped when answering tokens.

Performance: moto copies an object's whole body for every GET, ranged or not (two 127 MB copies
to serve a 4 KB range). Objects are kept in memory (MOTO_S3_DEFAULT_KEY_BUFFER_SIZE, set by the
local cloud) and their body is returned without copying, so a ranged GET costs its range. And
moto lists its own package directory (about 170 stat calls) on every request to route it; the list
never changes while the server runs, so it is computed once.
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

    import io

    from moto.s3.models import FakeKey

    copying_value = FakeKey.value

    def value_without_copy(self: Any) -> bytes:
        in_memory = getattr(self._value_buffer, "_file", None)
        if isinstance(in_memory, io.BytesIO):
            with self.lock:
                # bytes are immutable: after its first call getvalue() shares one object, no copy
                return in_memory.getvalue()
        return bytes(copying_value.fget(self))  # type: ignore[attr-defined]

    FakeKey.value = property(value_without_copy, copying_value.fset)  # type: ignore[method-assign,assignment,attr-defined]

    from moto import backends

    moto_modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: moto_modules
