"""What ``terraform apply`` recorded, read from ``terraform show -json``, and what the code expects.

``AppliedState`` indexes the resources and data sources of an applied state by type; the values are
the provider's (IAM, queue and key policies are JSON strings there). ``chalice_app_facts`` reads
chalice_app/app.py and its Blueprints with ``ast`` (importing it would check its settings and need its runtime
dependencies): its routes, its SQS and scheduled handlers and the variables it reads.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.terraform import REPO_ROOT

CHALICE_APP = REPO_ROOT / "chalice_app" / "app.py"


@dataclass(frozen=True)
class Resource:
    address: str
    mode: str  # managed or data
    type: str
    name: str
    key: str | int | None  # the for_each key or count index
    values: Mapping[str, Any]

    @property
    def module(self) -> str:
        """``module.x`` of ``module.x.aws_y.z["k"]`` ("" in the root module)."""
        head = self.address.split("[", 1)[0]
        prefix = head.rsplit(".", 3 if self.mode == "data" else 2)[0]
        return prefix if prefix.startswith("module.") and prefix != head else ""


class AppliedState:
    """A ``terraform show -json`` state."""

    def __init__(self, shown: Mapping[str, Any]) -> None:
        self.raw = shown
        values = shown.get("values") or {}
        self._outputs: dict[str, Any] = {
            name: output["value"] for name, output in (values.get("outputs") or {}).items()
        }
        self._items = list(_walk(values.get("root_module") or {}))

    def outputs(self) -> dict[str, Any]:
        return dict(self._outputs)

    def resources(self, type_name: str, name: str | None = None, module: str | None = None) -> list[Resource]:
        """Managed resource instances of ``type_name`` (and ``name``/``module`` when given)."""
        return self._select("managed", type_name, name, module)

    def data(self, type_name: str, name: str | None = None, module: str | None = None) -> list[Resource]:
        return self._select("data", type_name, name, module)

    def keyed(self, type_name: str, name: str, module: str | None = None) -> dict[Any, Resource]:
        """The instances of one ``for_each`` resource by key (fails if there are none)."""
        found = {item.key: item for item in self.resources(type_name, name, module)}
        assert found, f"no {type_name}.{name} in the applied state"
        return found

    def one(self, type_name: str, name: str | None = None, module: str | None = None) -> Resource:
        found = self.resources(type_name, name, module)
        assert len(found) == 1, f"expected one {type_name} {name or ''}, found {[r.address for r in found]}"
        return found[0]

    def _select(self, mode: str, type_name: str, name: str | None, module: str | None) -> list[Resource]:
        return [
            item
            for item in self._items
            if item.mode == mode
            and item.type == type_name
            and (name is None or item.name == name)
            and (module is None or item.module == module)
        ]


def _walk(module: Mapping[str, Any]) -> Iterator[Resource]:
    for item in module.get("resources", []):
        yield Resource(
            item["address"], item["mode"], item["type"], item["name"], item.get("index"), item["values"]
        )
    for child in module.get("child_modules", []):
        yield from _walk(child)


# -- policies ------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: tuple[tuple[str, str], ...]  # (type, identifier)
    conditions: Mapping[tuple[str, str], tuple[str, ...]]  # (operator, key) -> values

    def condition(self, operator: str, key: str) -> tuple[str, ...]:
        return self.conditions.get((operator, key), ())


def statements(document: str | Mapping[str, Any]) -> list[Statement]:
    """The statements of an IAM, SQS, KMS or IoT policy document (JSON text or parsed)."""
    parsed = json.loads(document) if isinstance(document, str) else document
    found = []
    for item in as_list(parsed.get("Statement")):
        principal = item.get("Principal", {})
        principals = (
            (("*", "*"),)
            if principal == "*"
            else tuple((kind, identifier) for kind, ids in principal.items() for identifier in as_list(ids))
        )
        conditions = {
            (operator, key): tuple(str(value) for value in as_list(values))
            for operator, tests in item.get("Condition", {}).items()
            for key, values in tests.items()
        }
        found.append(
            Statement(
                sid=str(item.get("Sid", "")),
                effect=item["Effect"],
                actions=tuple(sorted(as_list(item.get("Action")))),
                resources=tuple(sorted(as_list(item.get("Resource")))),
                principals=tuple(sorted(principals)),
                conditions=conditions,
            )
        )
    return found


# -- chalice_app/app.py and its Blueprints -------------------------------------------------------


@dataclass(frozen=True)
class ChaliceAppFacts:
    routes: frozenset[str]  # "METHOD /path"
    sqs_handlers: Mapping[str, tuple[str, int]]  # function -> (queue-name variable, batch size)
    scheduled_handlers: Mapping[str, str]  # function -> rate variable (minutes)
    environment_reads: Mapping[str, bool]  # variable -> read with a default
    names: frozenset[str]  # module-level functions and assignments of app.py

    @property
    def handlers(self) -> frozenset[str]:
        """Lambda handlers as the image runs them: ``app.<name>`` (the app is the image's root)."""
        return frozenset(
            {"app.app"} | {f"app.{name}" for name in (*self.sqs_handlers, *self.scheduled_handlers)}
        )


def _environment_variable(node: ast.AST) -> str | None:
    """The variable an expression reads with os.environ.get/os.getenv/os.environ[...], if any."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call) and ast.unparse(inner.func) in ("os.environ.get", "os.getenv"):
            return str(ast.literal_eval(inner.args[0]))
        if isinstance(inner, ast.Subscript) and ast.unparse(inner.value) == "os.environ":
            return str(ast.literal_eval(inner.slice))
    return None


def _module_names(module: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in module.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


def _environment_constants(module: ast.Module) -> dict[str, str]:
    """Module-level NAME = <reads a variable>: NAME -> the variable."""
    constants: dict[str, str] = {}
    for node in module.body:
        if isinstance(node, ast.Assign):
            variable = _environment_variable(node.value)
            for target in node.targets:
                if isinstance(target, ast.Name) and variable:
                    constants[target.id] = variable
    return constants


def _read_decorators(
    module: ast.Module,
    constants: dict[str, str],
    routes: set[str],
    sqs: dict[str, tuple[str, int]],
    scheduled: dict[str, str],
) -> None:
    for node in module.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if not isinstance(decorator, ast.Call):
                continue
            kind = getattr(decorator.func, "attr", None)
            keywords = {keyword.arg: keyword.value for keyword in decorator.keywords}
            if kind == "route":
                path_text = ast.literal_eval(decorator.args[0])
                methods = ast.literal_eval(keywords["methods"]) if "methods" in keywords else ["GET"]
                routes.update(f"{method} {path_text}" for method in methods)
            elif kind == "on_sqs_message":
                queue = keywords["queue"]
                assert isinstance(queue, ast.Name), f"{node.name}: queue is not a module constant"
                batch = ast.literal_eval(keywords["batch_size"]) if "batch_size" in keywords else 10
                sqs[node.name] = (constants[queue.id], int(batch))
            elif kind == "schedule":
                rate = decorator.args[0]
                assert isinstance(rate, ast.Call) and isinstance(rate.args[0], ast.Name), ast.unparse(rate)
                scheduled[node.name] = constants[rate.args[0].id]


def _environment_reads(module: ast.Module) -> dict[str, bool]:
    """Every variable the module reads -> whether with a default."""
    reads: dict[str, bool] = {}
    for inner in ast.walk(module):
        if isinstance(inner, ast.Call) and ast.unparse(inner.func) in ("os.environ.get", "os.getenv"):
            reads[str(ast.literal_eval(inner.args[0]))] = len(inner.args) > 1
        elif isinstance(inner, ast.Subscript) and ast.unparse(inner.value) == "os.environ":
            reads[str(ast.literal_eval(inner.slice))] = False
    return reads


def _registered_blueprints(app_path: Path, app_module: ast.Module) -> list[Path]:
    """The Blueprint modules app.py registers: those of the names its ``for blueprint in (...)``
    loop passes to ``register_blueprint``, resolved through its ``from chalice_app.chalicelib.<m>
    import <name>`` imports (a Blueprint written but never registered serves nothing)."""
    imported = {
        alias.asname or alias.name: node.module
        for node in app_module.body
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith("chalice_app.chalicelib.")
        for alias in node.names
    }
    registered: list[str] = []
    for node in app_module.body:
        if isinstance(node, ast.For) and "register_blueprint" in ast.unparse(node):
            assert isinstance(node.iter, ast.Tuple), ast.unparse(node.iter)
            registered += [element.id for element in node.iter.elts if isinstance(element, ast.Name)]
    assert registered, "app.py registers no Blueprint"
    return [
        app_path.parent / (imported[name].removeprefix("chalice_app.") + ".py").replace(".", "/", 1)
        for name in registered
    ]


def chalice_app_facts(app_path: Path = CHALICE_APP) -> ChaliceAppFacts:
    """The app's routes and handlers, read from app.py and the Blueprints it registers."""
    app_module = ast.parse(app_path.read_text())
    routes: set[str] = set()
    sqs: dict[str, tuple[str, int]] = {}
    scheduled: dict[str, str] = {}
    reads: dict[str, bool] = {}
    names = _module_names(app_module)
    for path in (app_path, *_registered_blueprints(app_path, app_module)):
        module = ast.parse(path.read_text())
        _read_decorators(module, _environment_constants(module), routes, sqs, scheduled)
        reads.update(_environment_reads(module))
    return ChaliceAppFacts(frozenset(routes), sqs, scheduled, reads, frozenset(names))
