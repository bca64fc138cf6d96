"""Errors the domain raises; entry points map them to HTTP status codes or task failures."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    status_code = 400
    code = "BadRequest"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidInput(DomainError):
    """A request parameter or body field is missing or malformed."""

    status_code = 400
    code = "InvalidInput"


class NotFound(DomainError):
    """The named resource does not exist."""

    status_code = 404
    code = "NotFound"


class Conflict(DomainError):
    """The request conflicts with the current state (for example a second start of one export)."""

    status_code = 409
    code = "Conflict"


class ExportIntegrityError(DomainError):
    """An export's parts do not add up to the planned record count; the export must fail, not ship."""

    status_code = 500
    code = "ExportIntegrityError"


class RetryableError(DomainError):
    """A failure that a retry can cure (a lost race, a briefly missing object): the workflow retries it."""

    status_code = 503
    code = "TransientError"


class IntegrityError(DomainError):
    """Counts that must add up do not: the step must fail loudly rather than publish wrong numbers."""

    status_code = 500
    code = "IntegrityError"


class StaleTaskToken(Exception):
    """The workflow no longer waits for this token (the task timed out or the execution ended)."""
