"""Fidelity fixes for the embedded moto server, applied only where the project starts moto itself.

moto 5.2.5 drops the ``cause`` of SendTaskFailure before it reaches its Step Functions interpreter,
so a Catch sees ``"Cause": null`` where AWS (and LocalStack) pass the worker's message through.
Our failure reasons depend on it, so the embedded server gets the one-line fix.

moto also lists an execution as RUNNING a moment before (and after) its interpreter exists; a task
token answered in that moment fails with an AttributeError (HTTP 500) for every other execution.
Such executions cannot own the token, so answering a token reads each execution's interpreter
once and skips those without one (checking first and reading later still raced).

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

    _answer_tokens_race_free()

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


def _answer_tokens_race_free() -> None:
    """moto answers a token by walking the executions and calling ``execution.exec_worker.env...``;
    an execution that ends (or starts) meanwhile has no worker or no environment and the call fails
    with an AttributeError (HTTP 500) for every other execution's token. Read each once, skip None."""
    import importlib

    # moto's internals, untyped for our purposes; the names are those its own methods use
    parser: Any = importlib.import_module("moto.stepfunctions.parser.models")
    backend = parser.StepFunctionsParserBackend

    def answer(self: Any, status: Any, deliver: Any) -> None:
        for execution in backend._get_executions(self, status):
            worker = getattr(execution, "exec_worker", None)
            environment = getattr(worker, "env", None)
            if environment is None:
                continue  # no interpreter (yet, or any more): it cannot own the token
            try:
                if deliver(environment.callback_pool_manager):
                    return
            except parser.CallbackNotifyConsumerError as consumer_error:
                if isinstance(consumer_error, parser.CallbackConsumerTimeout):
                    raise parser.TaskTimedOut() from consumer_error
                raise parser.TaskDoesNotExist() from consumer_error
        raise parser.InvalidToken()

    def send_task_heartbeat(self: Any, task_token: Any) -> Any:
        answer(self, parser.ExecutionStatus.RUNNING, lambda pool: pool.heartbeat(callback_id=task_token))

    def send_task_success(self: Any, task_token: Any, outcome: str) -> Any:
        success = parser.CallbackOutcomeSuccess(callback_id=task_token, output=outcome)
        answer(
            self,
            parser.ExecutionStatus.RUNNING,
            lambda pool: pool.notify(callback_id=task_token, outcome=success),
        )

    def send_task_failure(self: Any, task_token: Any, error: Any = None, cause: Any = None) -> Any:
        failure = parser.CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
        answer(self, None, lambda pool: pool.notify(callback_id=task_token, outcome=failure))
        return parser.SendTaskFailureOutput()

    backend.send_task_heartbeat = send_task_heartbeat
    backend.send_task_success = send_task_success
    backend.send_task_failure = send_task_failure
