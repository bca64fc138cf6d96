"""Runtime settings: one pydantic-settings class per feature, read once from the environment by its wiring.

Every feature's class (``HesSettings``, ``LakeSettings``, ``BridgeSettings``) derives from
:class:`FeatureSettings`, which gives them one behaviour:

* a field is read from one variable, the feature's prefix and the field's name (``MF_LAKE_`` and
  ``max_ranges``: ``MF_LAKE_MAX_RANGES``), matched case-insensitively; a variable several features
  read is declared here once, with the shared prefix ``MF_``: ``heartbeat_interval_seconds``
  (every feature's), :data:`InboundBucket` and :data:`FixedNow`; ``region`` (every feature's) is the
  AWS SDK's ``AWS_REGION``, else ``AWS_DEFAULT_REGION``;
* :meth:`FeatureSettings.from_env` reads them from the environment (or a mapping): a required
  variable that is unset or empty raises :class:`MissingSettings` naming every one, an invalid value
  :class:`InvalidSettings` naming its variable; keyword arguments build settings from those and the
  defaults only, never from the process's environment;
* :meth:`FeatureSettings.to_env` is the inverse, for the processes the local runtime starts.

Terraform sets the same variables on the Lambda functions and the local runtime on its worker
processes and API server, so code never needs to know where it runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from meterflow.core.timeutil import format_hes_time, parse_hes_time

SHARED_PREFIX = "MF_"


class MissingSettings(RuntimeError):
    """Variables a runtime needs are not set (or empty); the message names every one of them."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = tuple(dict.fromkeys(missing))
        super().__init__(
            f"{len(self.missing)} environment variable(s) not set: {', '.join(self.missing)}. "
            "Terraform sets them on the Lambda functions and `meterflow up` on its workers and API; "
            "for `chalice local --stage local` the `local` stage of chalice_app/.chalice/config.json "
            "holds them (`meterflow chalice-config` rewrites it from a running local cloud)."
        )


class InvalidSettings(ValueError):
    """Variables are set to values their settings refuse; the message names every one of them."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(
            f"{len(self.problems)} environment variable(s) invalid: "
            + "; ".join(f"{name}: {problem}" for name, problem in self.problems.items())
        )


def check_settings(
    *loaders: Callable[[Mapping[str, str]], object], env: Mapping[str, str] | None = None
) -> None:
    """Run every settings loader (``HesSettings.from_env``...) and report all their missing variables at once.

    A runtime calls this when it starts, so a missing variable stops it with one message naming
    them all instead of failing each request. Invalid values raise as the loader raises them.
    """
    env = os.environ if env is None else env
    missing: list[str] = []
    for load in loaders:
        try:
            load(env)
        except MissingSettings as error:
            missing += error.missing
    if missing:
        raise MissingSettings(missing)


def _hes_time_or_none(variable: str) -> BeforeValidator:
    """A timestamp variable in the HES format (:func:`parse_hes_time`); empty means unset."""

    def parse(value: object) -> object:
        if isinstance(value, str):
            return parse_hes_time(value, variable) if value else None
        return value

    return BeforeValidator(parse)


# Variables several features read: one name each, with the shared prefix whatever the feature's own.
# Those of every feature are FeatureSettings' fields; a feature that reads one of the others declares
# its field with the type below (and its default, if any).
InboundBucket = Annotated[str, Field(validation_alias=f"{SHARED_PREFIX}INBOUND_BUCKET")]
# A fixed "now" makes a fleet's visible history reproducible (tests, demos) and keeps the lake's
# scheduler on the simulated fleet's time; unset or empty = the wall clock.
FixedNow = Annotated[
    datetime | None,
    Field(validation_alias=f"{SHARED_PREFIX}FIXED_NOW"),
    _hes_time_or_none(f"{SHARED_PREFIX}FIXED_NOW"),
]


class _EnvironmentSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping, each field read from its one variable."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )

    def _extract_field_info(
        self, field: FieldInfo, field_name: str, model_config: Mapping[str, Any] | None = None
    ) -> list[tuple[str, str, bool]]:
        # validate_by_name (code builds settings by field name) would also read the prefix and the
        # name of a field whose variable is its alias (MF_LAKE_REGION beside AWS_REGION): only the
        # alias names it.
        found = super()._extract_field_info(field, field_name, model_config)
        return found if field.validation_alias is None else found[:-1]


class FeatureSettings(BaseSettings):
    """The settings of one feature, and those every feature has.

    A subclass names its prefix: ``class LakeSettings(FeatureSettings, env_prefix="MF_LAKE_")``.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        validate_by_name=True,
        validate_by_alias=True,
    )

    region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    # How often a worker sends SendTaskHeartbeat while it runs a job (every feature runs some): below
    # the state machines' HeartbeatSeconds (60 s by default) with room for two misses.
    heartbeat_interval_seconds: float = Field(
        15.0, validation_alias=f"{SHARED_PREFIX}HEARTBEAT_INTERVAL_SECONDS"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Built from keyword arguments: those and the defaults; the environment is from_env's to read.
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """The settings the environment (``os.environ``, or ``env``) holds.

        Raises :class:`MissingSettings` naming every required variable that is unset or empty, then
        :class:`InvalidSettings` naming every variable whose value the settings refuse.
        """
        values = _EnvironmentSource(cls, os.environ if env is None else env)()
        missing = [
            cls.env_name(name) for name in cls.required_fields(values) if not values.get(cls._input_key(name))
        ]
        if missing:
            raise MissingSettings(missing)
        try:
            return cls(**values)
        except ValidationError as error:
            raise InvalidSettings(cls._problems(error)) from None

    @classmethod
    def required_fields(cls, values: Mapping[str, Any]) -> list[str]:
        """The fields that must be set (and not empty), given the values the environment holds
        (keyed as :meth:`_input_key` says); a subclass adds those that depend on other values."""
        return [name for name, field in cls.model_fields.items() if field.is_required()]

    @classmethod
    def env_name(cls, field_name: str) -> str:
        """The variable a field is read from (and written to by :meth:`to_env`)."""
        alias = cls._alias(field_name)
        prefix = str(cls.model_config.get("env_prefix", ""))
        return alias if alias is not None else (prefix + field_name).upper()

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name -> its variable, for every field."""
        return {name: cls.env_name(name) for name in cls.model_fields}

    @classmethod
    def required_env(cls, values: Mapping[str, Any] | None = None) -> tuple[str, ...]:
        """The variables that must be set, given the values the environment holds (none: the defaults')."""
        return tuple(cls.env_name(name) for name in cls.required_fields(values or {}))

    def to_env(self) -> dict[str, str]:
        """The inverse of :meth:`from_env`, for processes the local runtime starts (unset ones left out)."""
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, datetime):
                env[self.env_name(name)] = format_hes_time(value)
            elif value is not None:
                env[self.env_name(name)] = str(value)
        return env

    @classmethod
    def _alias(cls, field_name: str) -> str | None:
        """The variable a field names itself (its first, for several), if it does not take the prefix's."""
        alias = cls.model_fields[field_name].validation_alias
        if isinstance(alias, AliasChoices):
            return str(alias.choices[0])
        return alias if isinstance(alias, str) else None

    @classmethod
    def _input_key(cls, field_name: str) -> str:
        """The key the environment source gives a field's value under: its alias, else its name."""
        return cls._alias(field_name) or field_name

    @classmethod
    def _problems(cls, error: ValidationError) -> dict[str, str]:
        """Each refused value's variable -> why (a check of several fields under ``<prefix>*``)."""
        variables = {cls._input_key(name): cls.env_name(name) for name in cls.model_fields}
        variables |= {name: cls.env_name(name) for name in cls.model_fields}
        several = f"{cls.model_config.get('env_prefix') or cls.__name__ + '.'}*"
        problems: dict[str, str] = {}
        for item in error.errors(include_url=False):
            location = item["loc"][0] if item["loc"] else None
            variable = variables.get(str(location), several) if location is not None else several
            reason = str(item["ctx"]["error"]) if item["type"] == "value_error" else item["msg"]
            if "input" in item and location is not None:
                reason = f"{reason}, got {item['input']!r}"
            problems[variable] = reason if variable not in problems else f"{problems[variable]}; {reason}"
        return problems
