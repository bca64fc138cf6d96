"""Contracts: the one mechanism for every message and body a feature receives.

A contract is a pydantic model, frozen, that refuses unknown fields unless it says otherwise (a
record read back from a table, say). The domain reads its input through :meth:`Contract.parse`
(a decoded value) or :meth:`Contract.parse_json` (JSON text): either returns the model or raises
:class:`~meterflow.core.errors.InvalidInput` naming the first offending field, which the entry
points answer with HTTP 400 or a task failure, never a 500.

A validator that has the domain's own wording for a problem raises :class:`InvalidInput` itself
(``parse_hes_time`` does): pydantic lets any exception other than ``ValueError`` and
``AssertionError`` through unchanged, so the caller sees exactly that message and field. Other
problems are pydantic's, reported as ``"<what>: <field>: <pydantic's message>"``.

HTTP bodies arrive as bytes: :func:`parse_json_body` decodes one (400 when it is missing or not
JSON) before a contract validates it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
)

from meterflow.core.errors import InvalidInput
from meterflow.core.timeutil import format_hes_time, parse_hes_time


class Contract(BaseModel):
    """Base of every message and body contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: What errors call the message, unless the caller says; "" means ``malformed <class> payload``.
    what: ClassVar[str] = ""

    @classmethod
    def parse(cls, data: object, what: str | None = None) -> Self:
        """Validate a decoded value; ``what`` names the message in errors."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise contract_violation(exc, what or cls._what()) from exc

    @classmethod
    def parse_json(cls, raw: str | bytes, what: str | None = None) -> Self:
        """Decode and validate JSON text: malformed JSON is a violation like any other."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise contract_violation(exc, what or cls._what()) from exc

    @classmethod
    def _what(cls) -> str:
        return cls.what or f"malformed {cls.__name__} payload"


def contract_violation(error: ValidationError, what: str) -> InvalidInput:
    """The :class:`InvalidInput` for pydantic's first complaint, naming the field it is about."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or None
    # Not "a valid dictionary or instance of <class>": the class is no business of the sender's.
    problem = "Input should be an object" if first["type"] in _NOT_AN_OBJECT else first["msg"]
    return InvalidInput(f"{what}: {where}: {problem}" if where else f"{what}: {problem}", field=where)


_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dataclass_type", "dict_type"})


def _hes_time(value: object, info: ValidationInfo) -> datetime:
    return parse_hes_time(value, info.field_name or "time")


#: A timestamp of the HES contract, naive UTC: ``2023-02-27 16:00:00.000000`` and the shorter forms a
#: person types are accepted (:func:`~meterflow.core.timeutil.parse_hes_time`, whose messages name
#: the field), the long form is written.
HesTime = Annotated[
    datetime,
    PlainValidator(_hes_time),
    PlainSerializer(format_hes_time, return_type=str, when_used="json"),
]


def parse_json_body(raw: bytes | str | None) -> object:
    """An HTTP request's JSON body, decoded; InvalidInput (400) when it is absent or not JSON."""
    if raw is None or (isinstance(raw, bytes | str) and not raw.strip()):
        raise InvalidInput("a JSON body is required", field="body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from exc
    except RecursionError as exc:  # thousands of nested arrays: no request of ours nests that deep
        raise InvalidInput("the body nests too deeply", field="body") from exc
