"""A small, strict model of this repository's Terraform, for static tests.

python-hcl2 parses the ``.tf`` files; this module evaluates the subset of HCL expressions the stack
uses (references, string templates, arithmetic, comparisons, conditionals, for-expressions and a
few functions) and expands ``for_each``/``count`` and ``dynamic`` blocks, so a test can ask "which
queues would Terraform create, with which names and redrive policies?" and compare the answer with
``meterflow/stack.py``.

What Terraform only knows after apply (resource attributes, data sources) evaluates to
:class:`Unknown`, which remembers the reference it stands for. Data-source attributes can be
supplied up front (``known=``), e.g. the account id. Syntax outside the subset raises
:class:`EvaluationError` instead of guessing, so a refactoring that the model does not understand
makes the tests fail loudly rather than pass silently.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

_BLOCK = "__is_block__"
_META_ATTRIBUTES = frozenset({"source", "version", "providers", "depends_on", "count", "for_each"})
_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=True)


class EvaluationError(Exception):
    """An expression the model cannot evaluate (unsupported syntax, missing attribute, type error)."""


@dataclass(frozen=True)
class Unknown:
    """A value Terraform knows only after apply; ``ref`` is the reference it came from."""

    ref: str

    def __str__(self) -> str:
        return self.ref


@dataclass(frozen=True)
class TemplateFile:
    """The result of ``templatefile(path, variables)``: the file and the variables passed to it."""

    path: str
    variables: Mapping[str, Any]


def unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def is_block_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and item.get(_BLOCK) for item in value)
    )


def format_number(value: int | float) -> str:
    """A number as Terraform's ``tostring`` and string templates print it."""
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    return str(value)


def to_string(value: Any) -> str | Unknown:
    if isinstance(value, Unknown):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str):
        return value
    raise EvaluationError(f"cannot convert {value!r} to a string")


# ---------------------------------------------------------------------------------------------
# Expression syntax
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """An expression of the supported HCL subset."""


@dataclass(frozen=True)
class Literal(Node):
    value: Any


@dataclass(frozen=True)
class Template(Node):
    parts: tuple[str | Node, ...]


@dataclass(frozen=True)
class Variable(Node):
    name: str


@dataclass(frozen=True)
class GetAttr(Node):
    target: Node
    name: str


@dataclass(frozen=True)
class Index(Node):
    target: Node
    key: Node


@dataclass(frozen=True)
class Splat(Node):
    target: Node
    text: str


@dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class TupleCons(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class ObjectCons(Node):
    items: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class BinaryOp(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class UnaryOp(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Conditional(Node):
    condition: Node
    if_true: Node
    if_false: Node


@dataclass(frozen=True)
class ForExpr(Node):
    key_var: str | None
    value_var: str
    collection: Node
    key_expr: Node | None  # None: a tuple comprehension
    value_expr: Node
    condition: Node | None


_BINARY_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||",),
    ("&&",),
    ("==", "!="),
    ("<=", ">=", "<", ">"),
    ("+", "-"),
    ("*", "/", "%"),
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


class Parser:
    """Recursive-descent parser of one HCL expression (as python-hcl2 serializes them)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    @classmethod
    def parse(cls, text: str) -> Node:
        parser = cls(text)
        node = parser.expression()
        parser.skip_space()
        if parser.pos != len(text):
            raise EvaluationError(f"unexpected {text[parser.pos :]!r} in {text!r}")
        return node

    # -- lexing helpers ----------------------------------------------------------------------

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def peek(self, token: str) -> bool:
        self.skip_space()
        if not self.text.startswith(token, self.pos):
            return False
        if _IDENTIFIER.fullmatch(token):  # a keyword must not be the prefix of an identifier
            end = self.pos + len(token)
            return end >= len(self.text) or not re.match(r"[A-Za-z0-9_-]", self.text[end])
        return True

    def accept(self, token: str) -> bool:
        if self.peek(token):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str) -> None:
        if not self.accept(token):
            raise EvaluationError(
                f"expected {token!r} at {self.text[self.pos : self.pos + 30]!r} in {self.text!r}"
            )

    def identifier(self) -> str:
        self.skip_space()
        match = _IDENTIFIER.match(self.text, self.pos)
        if not match:
            raise EvaluationError(f"expected an identifier at {self.text[self.pos : self.pos + 30]!r}")
        self.pos = match.end()
        return match.group()

    # -- grammar -----------------------------------------------------------------------------

    def expression(self) -> Node:
        condition = self.binary(0)
        if self.accept("?"):
            if_true = self.expression()
            self.expect(":")
            if_false = self.expression()
            return Conditional(condition, if_true, if_false)
        return condition

    def binary(self, level: int) -> Node:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            op = next((op for op in _BINARY_LEVELS[level] if self.peek(op)), None)
            if op is None:
                return left
            self.pos += len(op)
            left = BinaryOp(op, left, self.binary(level + 1))

    def unary(self) -> Node:
        if self.accept("!"):
            return UnaryOp("!", self.unary())
        if self.peek("-") and not self.peek("->"):
            self.pos += 1
            return UnaryOp("-", self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            if self.peek(".*") or self.peek("[*]"):
                start = self.pos
                self.pos += 2 if self.text.startswith(".*", self.pos) else 3
                while self.accept("."):
                    self.identifier()
                return Splat(node, self.text[start : self.pos])
            if self.accept("."):
                self.skip_space()
                number = _NUMBER.match(self.text, self.pos)
                if number:  # legacy index syntax: list.0
                    self.pos = number.end()
                    node = Index(node, Literal(int(number.group())))
                else:
                    node = GetAttr(node, self.identifier())
            elif self.accept("["):
                key = self.expression()
                self.expect("]")
                node = Index(node, key)
            else:
                return node

    def primary(self) -> Node:
        self.skip_space()
        if self.pos >= len(self.text):
            raise EvaluationError(f"unexpected end of {self.text!r}")
        char = self.text[self.pos]
        if char == '"':
            return self.string()
        if char == "(":
            self.pos += 1
            node = self.expression()
            self.expect(")")
            return node
        if char == "[":
            return self.tuple_or_for()
        if char == "{":
            return self.object_or_for()
        if self.text.startswith("<<", self.pos):
            raise EvaluationError("heredocs are not supported: use jsonencode or a quoted string")
        number = _NUMBER.match(self.text, self.pos)
        if number:
            self.pos = number.end()
            text = number.group()
            return Literal(float(text) if number.group(1) or number.group(2) else int(text))
        name = self.identifier()
        if name in ("true", "false"):
            return Literal(name == "true")
        if name == "null":
            return Literal(None)
        if self.accept("("):
            args: list[Node] = []
            while not self.accept(")"):
                args.append(self.expression())
                if self.accept("..."):
                    raise EvaluationError("argument expansion (...) is not supported")
                if not self.accept(","):
                    self.expect(")")
                    break
            return Call(name, tuple(args))
        return Variable(name)

    def string(self) -> Node:
        self.expect('"')
        parts: list[str | Node] = []
        literal: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise EvaluationError(f"unterminated string in {self.text!r}")
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                break
            if char == "\\":
                escaped = self.text[self.pos + 1]
                if escaped not in _ESCAPES:
                    raise EvaluationError(f"unsupported escape \\{escaped}")
                literal.append(_ESCAPES[escaped])
                self.pos += 2
            elif self.text.startswith("$${", self.pos) or self.text.startswith("%%{", self.pos):
                literal.append(self.text[self.pos + 1 : self.pos + 3])
                self.pos += 3
            elif self.text.startswith("%{", self.pos):
                raise EvaluationError("template directives (%{...}) are not supported")
            elif self.text.startswith("${", self.pos):
                self.pos += 2
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(self.expression())
                self.expect("}")
            else:
                literal.append(char)
                self.pos += 1
        if literal:
            parts.append("".join(literal))
        if len(parts) == 1 and isinstance(parts[0], str):
            return Literal(parts[0])
        return Template(tuple(parts)) if parts else Literal("")

    def _for_header(self) -> tuple[str | None, str, Node]:
        first = self.identifier()
        second = self.identifier() if self.accept(",") else None
        self.expect("in")
        collection = self.expression()
        self.expect(":")
        return (first, second, collection) if second is not None else (None, first, collection)

    def _for_condition(self) -> Node | None:
        return self.expression() if self.accept("if") else None

    def tuple_or_for(self) -> Node:
        self.expect("[")
        if self.accept("for"):
            key_var, value_var, collection = self._for_header()
            value = self.expression()
            condition = self._for_condition()
            self.expect("]")
            return ForExpr(key_var, value_var, collection, None, value, condition)
        items: list[Node] = []
        while not self.accept("]"):
            items.append(self.expression())
            if not self.accept(","):
                self.expect("]")
                break
        return TupleCons(tuple(items))

    def object_or_for(self) -> Node:
        self.expect("{")
        if self.accept("for"):
            key_var, value_var, collection = self._for_header()
            key = self.expression()
            self.expect("=>")
            value = self.expression()
            if self.accept("..."):
                raise EvaluationError("grouping for-expressions (...) are not supported")
            condition = self._for_condition()
            self.expect("}")
            return ForExpr(key_var, value_var, collection, key, value, condition)
        items: list[tuple[Node, Node]] = []
        while not self.accept("}"):
            self.skip_space()
            key = self.primary() if self.text[self.pos] in '"(' else Literal(self.identifier())
            if not (self.accept("=") or self.accept(":")):
                raise EvaluationError(f"expected '=' after object key in {self.text!r}")
            items.append((key, self.expression()))
            self.accept(",")
        return ObjectCons(tuple(items))


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


class Namespace:
    """A lazily evaluated set of named values (``local.*``, ``module.*``)."""

    def __init__(self, name: str, resolve: Callable[[str], Any]) -> None:
        self.name = name
        self._resolve = resolve

    def get(self, attribute: str) -> Any:
        return self._resolve(attribute)


@dataclass
class Scope:
    module: ModuleInstance
    names: dict[str, Any] = field(default_factory=dict)  # each, count, for-expression variables

    def child(self, **names: Any) -> Scope:
        return Scope(self.module, {**self.names, **names})


def _collection_items(collection: Any) -> list[tuple[Any, Any]]:
    if isinstance(collection, dict):
        return sorted(collection.items())  # Terraform iterates maps in lexical key order
    if isinstance(collection, list):
        return list(enumerate(collection))
    raise EvaluationError(f"cannot iterate over {collection!r}")


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    if op in ("==", "!="):
        return (left == right) == (op == "==")
    if op in ("&&", "||"):
        if not (isinstance(left, bool) and isinstance(right, bool)):
            raise EvaluationError(f"{op} needs booleans, got {left!r} and {right!r}")
        return (left and right) if op == "&&" else (left or right)
    if (
        isinstance(left, bool)
        or isinstance(right, bool)
        or not (isinstance(left, int | float) and isinstance(right, int | float))
    ):
        raise EvaluationError(f"{op} needs numbers, got {left!r} and {right!r}")
    operations: dict[str, Callable[[Any, Any], Any]] = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b,
        "%": lambda a, b: a % b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }
    return operations[op](left, right)


def _contains_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(_contains_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(_contains_unknown(item) for item in value)
    return False


def _regex(pattern: str, text: str) -> Any:
    match = re.search(pattern, text)
    if match is None:
        raise EvaluationError(f"regex {pattern!r} does not match {text!r}")
    return match.group()


def _flatten(items: Any) -> list[Any]:
    if not isinstance(items, list):
        raise EvaluationError(f"flatten needs a list, got {items!r}")
    return [leaf for item in items for leaf in (_flatten(item) if isinstance(item, list) else [item])]


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "tostring": to_string,
    "tonumber": lambda value: value if isinstance(value, int | float) else json.loads(value),
    "merge": lambda *maps: {key: value for item in maps for key, value in item.items()},
    "concat": lambda *lists: [item for items in lists for item in items],
    "flatten": _flatten,
    "keys": lambda value: sorted(value),
    "values": lambda value: [value[key] for key in sorted(value)],
    "length": len,
    "lookup": lambda mapping, key, *default: mapping.get(key, *default) if default else mapping[key],
    "contains": lambda collection, value: value in collection,
    "toset": lambda items: sorted(set(items), key=json.dumps),
    "tolist": list,
    "tomap": dict,
    "distinct": lambda items: [
        json.loads(text) for text in dict.fromkeys(json.dumps(item) for item in items)
    ],
    "split": lambda separator, text: text.split(separator),
    "join": lambda separator, items: separator.join(items),
    "trimprefix": lambda text, prefix: text.removeprefix(prefix),
    "trimsuffix": lambda text, suffix: text.removesuffix(suffix),
    "trimspace": str.strip,
    "replace": lambda text, old, new: text.replace(old, new),
    "startswith": lambda text, prefix: text.startswith(prefix),
    "endswith": lambda text, suffix: text.endswith(suffix),
    "upper": str.upper,
    "lower": str.lower,
    "alltrue": lambda items: all(items),
    "anytrue": lambda items: any(items),
    "floor": math.floor,
    "ceil": math.ceil,
    "min": min,
    "max": max,
    "regex": _regex,
    "jsonencode": lambda value: value,  # kept as a structure so tests can read policies
}
# Functions whose result is only known after apply (file hashes, digests of unknown values).
_OPAQUE_FUNCTIONS = frozenset(
    {"filebase64sha256", "filesha256", "sha1", "sha256", "md5", "timestamp", "uuid"}
)
_STRUCTURAL_FUNCTIONS = frozenset(
    {"jsonencode", "templatefile", "merge", "concat", "length", "keys", "values"}
)


def evaluate_node(node: Node, scope: Scope) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Template):
        rendered: list[str] = []
        for part in node.parts:
            value = part if isinstance(part, str) else to_string(evaluate_node(part, scope))
            if isinstance(value, Unknown):
                return Unknown(f"template containing {value.ref}")
            rendered.append(value)
        return "".join(rendered)
    if isinstance(node, Variable):
        return scope.module.resolve_variable(node.name, scope)
    if isinstance(node, GetAttr):
        return _get_attribute(evaluate_node(node.target, scope), node.name, scope)
    if isinstance(node, Index):
        target, key = evaluate_node(node.target, scope), evaluate_node(node.key, scope)
        if isinstance(target, Unknown):
            return Unknown(f"{target.ref}[{json.dumps(key) if not isinstance(key, Unknown) else '?'}]")
        if isinstance(key, Unknown):
            return Unknown(f"{target!r}[{key.ref}]")
        try:
            return target[key]
        except (KeyError, IndexError, TypeError) as error:
            raise EvaluationError(f"no element {key!r} in {target!r}") from error
    if isinstance(node, Splat):
        target = evaluate_node(node.target, scope)
        return Unknown(f"{target}{node.text}")
    if isinstance(node, TupleCons):
        return [evaluate_node(item, scope) for item in node.items]
    if isinstance(node, ObjectCons):
        result: dict[str, Any] = {}
        for key_node, value_node in node.items:
            key = evaluate_node(key_node, scope)
            if not isinstance(key, str):
                raise EvaluationError(f"object keys must be known strings, got {key!r}")
            result[key] = evaluate_node(value_node, scope)
        return result
    if isinstance(node, UnaryOp):
        operand = evaluate_node(node.operand, scope)
        if isinstance(operand, Unknown):
            return operand
        return (not operand) if node.op == "!" else -operand
    if isinstance(node, BinaryOp):
        left, right = evaluate_node(node.left, scope), evaluate_node(node.right, scope)
        if isinstance(left, Unknown) or isinstance(right, Unknown):
            return Unknown(f"({left} {node.op} {right})")
        return _arithmetic(node.op, left, right)
    if isinstance(node, Conditional):
        condition = evaluate_node(node.condition, scope)
        if isinstance(condition, Unknown):
            return Unknown(f"conditional on {condition.ref}")
        if not isinstance(condition, bool):
            raise EvaluationError(f"condition is not a boolean: {condition!r}")
        return evaluate_node(node.if_true if condition else node.if_false, scope)
    if isinstance(node, ForExpr):
        return _evaluate_for(node, scope)
    if isinstance(node, Call):
        return _call(node, scope)
    raise EvaluationError(f"unsupported node {node!r}")


def _get_attribute(target: Any, name: str, scope: Scope) -> Any:
    if isinstance(target, Namespace):
        return target.get(name)
    if isinstance(target, Unknown):
        ref = f"{target.ref}.{name}"
        return scope.module.model.known.get(ref, Unknown(ref))
    if isinstance(target, dict):
        if name not in target:
            raise EvaluationError(f"no attribute {name!r} in {sorted(target)}")
        return target[name]
    raise EvaluationError(f"cannot read attribute {name!r} of {target!r}")


def _evaluate_for(node: ForExpr, scope: Scope) -> Any:
    collection = evaluate_node(node.collection, scope)
    if isinstance(collection, Unknown):
        return Unknown(f"for-expression over {collection.ref}")
    result_list: list[Any] = []
    result_map: dict[str, Any] = {}
    for key, value in _collection_items(collection):
        names = {node.value_var: value}
        if node.key_var is not None:
            names[node.key_var] = key
        inner = scope.child(**names)
        if node.condition is not None:
            keep = evaluate_node(node.condition, inner)
            if isinstance(keep, Unknown):
                return Unknown(f"for-expression filtered by {keep.ref}")
            if not keep:
                continue
        if node.key_expr is None:
            result_list.append(evaluate_node(node.value_expr, inner))
        else:
            map_key = evaluate_node(node.key_expr, inner)
            if not isinstance(map_key, str):
                return Unknown(f"for-expression with key {map_key}")
            if map_key in result_map:
                raise EvaluationError(f"duplicate key {map_key!r} in for-expression")
            result_map[map_key] = evaluate_node(node.value_expr, inner)
    return result_list if node.key_expr is None else result_map


def _call(node: Call, scope: Scope) -> Any:
    if node.name in ("can", "try"):
        for arg in node.args:
            try:
                value = evaluate_node(arg, scope)
            except (EvaluationError, TypeError, ValueError, AttributeError):
                continue
            return True if node.name == "can" else value
        if node.name == "can":
            return False
        raise EvaluationError("try(): no argument could be evaluated")
    args = [evaluate_node(arg, scope) for arg in node.args]
    if node.name in _OPAQUE_FUNCTIONS:
        return Unknown(f"{node.name}(...)")
    if node.name == "templatefile":
        path, variables = args
        if isinstance(path, Unknown) or not isinstance(variables, dict):
            raise EvaluationError(f"templatefile needs a known path and an object, got {args!r}")
        return TemplateFile(path, variables)
    if node.name not in _FUNCTIONS:
        raise EvaluationError(f"function {node.name}() is not supported by the model")
    if node.name in _STRUCTURAL_FUNCTIONS:
        if any(isinstance(arg, Unknown) for arg in args):
            return Unknown(f"{node.name}(...)")
    elif any(_contains_unknown(arg) for arg in args):
        return Unknown(f"{node.name}(...)")
    try:
        return _FUNCTIONS[node.name](*args)
    except EvaluationError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise EvaluationError(f"{node.name}{tuple(args)!r}: {error}") from error


def evaluate(value: Any, scope: Scope) -> Any:
    """Evaluate a value as python-hcl2 serializes it (quoted templates, ``${expr}``, lists, dicts)."""
    if isinstance(value, str):
        if value.startswith('"'):
            return evaluate_node(Parser.parse(value), scope)
        if value.startswith("${") and value.endswith("}"):
            return evaluate_node(Parser.parse(value[2:-1]), scope)
        return evaluate_node(Parser.parse(value), scope)  # bare keywords such as null
    if isinstance(value, list):
        return [evaluate(item, scope) for item in value]
    if isinstance(value, dict):
        return {unquote(key): evaluate(item, scope) for key, item in value.items() if key != _BLOCK}
    return value


def evaluate_body(body: Mapping[str, Any], scope: Scope) -> dict[str, Any]:
    """Evaluate a block body: attributes, nested blocks (lists of bodies) and dynamic blocks."""
    result: dict[str, Any] = {}
    for key, value in body.items():
        if key == _BLOCK:
            continue
        if key == "dynamic":
            for dynamic in value:
                for label, spec in dynamic.items():
                    if label == _BLOCK:
                        continue
                    result.setdefault(unquote(label), []).extend(_expand_dynamic(unquote(label), spec, scope))
        elif is_block_list(value):
            result.setdefault(key, []).extend(evaluate_body(block, scope) for block in value)
        else:
            result[key] = evaluate(value, scope)
    return result


def _expand_dynamic(label: str, spec: Mapping[str, Any], scope: Scope) -> list[dict[str, Any]]:
    collection = evaluate(spec["for_each"], scope)
    if isinstance(collection, Unknown):
        raise EvaluationError(f"dynamic {label!r} iterates over an unknown value {collection.ref}")
    iterator = unquote(evaluate(spec["iterator"], scope)) if "iterator" in spec else label
    return [
        evaluate_body(spec["content"][0], scope.child(**{iterator: {"key": key, "value": value}}))
        for key, value in _collection_items(collection)
    ]


# ---------------------------------------------------------------------------------------------
# Configuration: files, modules, resources
# ---------------------------------------------------------------------------------------------


def load_hcl(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return dict(hcl2.load(handle, serialization_options=_OPTIONS))


@dataclass(frozen=True)
class ModuleSource:
    """The parsed ``.tf`` files of one module directory."""

    directory: Path
    variables: Mapping[str, Mapping[str, Any]]
    locals: Mapping[str, Any]
    resources: Sequence[tuple[str, str, Mapping[str, Any]]]
    data: Sequence[tuple[str, str, Mapping[str, Any]]]
    module_calls: Mapping[str, Mapping[str, Any]]
    outputs: Mapping[str, Mapping[str, Any]]
    terraform: Sequence[Mapping[str, Any]]

    @classmethod
    def load(cls, directory: Path) -> ModuleSource:
        variables: dict[str, Mapping[str, Any]] = {}
        local_values: dict[str, Any] = {}
        resources: list[tuple[str, str, Mapping[str, Any]]] = []
        data: list[tuple[str, str, Mapping[str, Any]]] = []
        module_calls: dict[str, Mapping[str, Any]] = {}
        outputs: dict[str, Mapping[str, Any]] = {}
        terraform: list[Mapping[str, Any]] = []
        for path in sorted(directory.glob("*.tf")):
            parsed = load_hcl(path)
            for block in parsed.get("variable", []):
                variables.update(_labelled(block))
            for block in parsed.get("locals", []):
                duplicates = set(local_values) & (set(block) - {_BLOCK})
                if duplicates:
                    raise EvaluationError(f"locals defined twice in {directory}: {sorted(duplicates)}")
                local_values.update({key: value for key, value in block.items() if key != _BLOCK})
            for kind, target in (("resource", resources), ("data", data)):
                for block in parsed.get(kind, []):
                    for type_label, named in block.items():
                        target.extend(
                            (unquote(type_label), name, body) for name, body in _labelled(named).items()
                        )
            for block in parsed.get("module", []):
                module_calls.update(_labelled(block))
            for block in parsed.get("output", []):
                outputs.update(_labelled(block))
            terraform.extend(parsed.get("terraform", []))
        return cls(directory, variables, local_values, resources, data, module_calls, outputs, terraform)


def _labelled(block: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {unquote(label): body for label, body in block.items() if label != _BLOCK}


@dataclass
class ResourceInstance:
    """One instance of a managed resource (after ``for_each``/``count`` expansion)."""

    module: ModuleInstance
    type: str
    name: str
    key: str | int | None
    body: Mapping[str, Any]
    scope: Scope

    @property
    def address(self) -> str:
        index = "" if self.key is None else f"[{json.dumps(self.key)}]"
        prefix = f"{self.module.address}." if self.module.address else ""
        return f"{prefix}{self.type}.{self.name}{index}"

    def has(self, attribute: str) -> bool:
        return attribute in self.body

    def attr(self, attribute: str) -> Any:
        if attribute not in self.body:
            raise KeyError(f"{self.address} has no attribute {attribute!r}")
        return evaluate(self.body[attribute], self.scope)

    def evaluated(self) -> dict[str, Any]:
        """The whole body, evaluated (nested and dynamic blocks as lists of dicts)."""
        return evaluate_body(self.body, self.scope)

    def blocks(self, name: str) -> list[dict[str, Any]]:
        return list(self.evaluated().get(name, []))


_REFERENCE = re.compile(
    r'^(?P<type>[a-z0-9_]+)\.(?P<name>[A-Za-z0-9_-]+)(\[(?P<key>"[^"]*"|[0-9]+)\])?\.(?P<attr>\w+)$'
)


class ModuleInstance:
    """A module with its input values: variables, locals, resources and child modules."""

    def __init__(
        self, model: TerraformModel, source: ModuleSource, address: str, inputs: Mapping[str, Any]
    ) -> None:
        self.model = model
        self.source = source
        self.address = address
        unexpected = set(inputs) - set(source.variables)
        if unexpected:
            raise EvaluationError(f"{address or 'root'}: inputs without a variable: {sorted(unexpected)}")
        self.variables: dict[str, Any] = {}
        for name, spec in source.variables.items():
            if name in inputs:
                self.variables[name] = inputs[name]
            elif "default" in spec:
                self.variables[name] = evaluate(spec["default"], Scope(self))
            else:
                raise EvaluationError(f"{address or 'root'}: variable {name!r} has no value")
        self._locals: dict[str, Any] = {}
        self._evaluating: set[str] = set()
        self._children: dict[str, ModuleInstance] = {}

    # -- references --------------------------------------------------------------------------

    def resolve_variable(self, name: str, scope: Scope) -> Any:
        if name in scope.names:
            return scope.names[name]
        if name == "var":
            return self.variables
        if name == "local":
            return Namespace("local", self.local)
        if name == "module":
            return Namespace("module", self._module_outputs)
        if name == "path":
            return {"root": str(self.model.root_directory), "module": str(self.source.directory), "cwd": "."}
        return Unknown(name)  # resource types, data, self, terraform

    def local(self, name: str) -> Any:
        if name not in self._locals:
            if name not in self.source.locals:
                raise EvaluationError(f"{self.address or 'root'}: no local {name!r}")
            if name in self._evaluating:
                raise EvaluationError(f"{self.address or 'root'}: local {name!r} refers to itself")
            self._evaluating.add(name)
            try:
                self._locals[name] = evaluate(self.source.locals[name], Scope(self))
            finally:
                self._evaluating.discard(name)
        return self._locals[name]

    def output(self, name: str) -> Any:
        if name not in self.source.outputs:
            raise EvaluationError(f"{self.address or 'root'} has no output {name!r}")
        return evaluate(self.source.outputs[name]["value"], Scope(self))

    def _module_outputs(self, call_name: str) -> Namespace:
        child = self.child(call_name)

        def output(name: str) -> Any:
            value = child.output(name)
            return Unknown(f"module.{call_name}.{name}") if isinstance(value, Unknown) else value

        return Namespace(f"module.{call_name}", output)

    # -- structure ---------------------------------------------------------------------------

    def child(self, call_name: str) -> ModuleInstance:
        if call_name not in self._children:
            if call_name not in self.source.module_calls:
                raise EvaluationError(f"{self.address or 'root'}: no module {call_name!r}")
            body = self.source.module_calls[call_name]
            if "count" in body or "for_each" in body:
                raise EvaluationError("module count/for_each is not supported by the model")
            directory = (self.source.directory / evaluate(body["source"], Scope(self))).resolve()
            inputs = {
                key: evaluate(value, Scope(self))
                for key, value in body.items()
                if key not in _META_ATTRIBUTES and key != _BLOCK
            }
            address = f"{self.address}.module.{call_name}" if self.address else f"module.{call_name}"
            self._children[call_name] = ModuleInstance(
                self.model, self.model.source(directory), address, inputs
            )
        return self._children[call_name]

    def children(self) -> dict[str, ModuleInstance]:
        return {name: self.child(name) for name in self.source.module_calls}

    def resources(self) -> Iterator[ResourceInstance]:
        for type_name, name, body in self.source.resources:
            yield from self._expand(type_name, name, body)

    def data_sources(self) -> Iterator[ResourceInstance]:
        """Data source instances; their type is prefixed with ``data.``."""
        for type_name, name, body in self.source.data:
            yield from self._expand(f"data.{type_name}", name, body)

    def _expand(self, type_name: str, name: str, body: Mapping[str, Any]) -> Iterator[ResourceInstance]:
        scope = Scope(self)
        if "for_each" in body:
            collection = evaluate(body["for_each"], scope)
            if isinstance(collection, Unknown):
                raise EvaluationError(f"{type_name}.{name}: for_each over unknown {collection.ref}")
            items = (
                sorted(collection.items()) if isinstance(collection, dict) else [(k, k) for k in collection]
            )
            for key, value in items:
                yield ResourceInstance(
                    self, type_name, name, key, body, scope.child(each={"key": key, "value": value})
                )
        elif "count" in body:
            count = evaluate(body["count"], scope)
            if not isinstance(count, int):
                raise EvaluationError(f"{type_name}.{name}: count is not a known number: {count!r}")
            for index in range(count):
                yield ResourceInstance(
                    self, type_name, name, index, body, scope.child(count={"index": index})
                )
        else:
            yield ResourceInstance(self, type_name, name, None, body, scope)

    def referenced_resource(self, reference: Unknown) -> tuple[ResourceInstance, str]:
        """The resource instance (of this module) and attribute an unknown value refers to."""
        match = _REFERENCE.match(reference.ref)
        if not match:
            raise EvaluationError(f"not a resource attribute reference: {reference.ref}")
        key_text = match.group("key")
        key: str | int | None = None if key_text is None else json.loads(key_text)
        for instance in self.resources():
            if (instance.type, instance.name, instance.key) == (
                match.group("type"),
                match.group("name"),
                key,
            ):
                return instance, match.group("attr")
        raise EvaluationError(f"{self.address or 'root'}: no resource instance for {reference.ref}")

    def validation_failures(self) -> list[str]:
        """Variable validations that evaluate to false for this module's input values."""
        failures: list[str] = []
        for name, spec in self.source.variables.items():
            for validation in spec.get("validation", []):
                result = evaluate(validation["condition"], Scope(self))
                if result is not True and not isinstance(result, Unknown):
                    failures.append(f"{self.address or 'root'}: var.{name} = {self.variables[name]!r}")
        return failures

    def precondition_failures(self) -> list[str]:
        failures: list[str] = []
        for instance in self.resources():
            for lifecycle in instance.body.get("lifecycle", []):
                for precondition in lifecycle.get("precondition", []):
                    result = evaluate(precondition["condition"], instance.scope)
                    if result is not True and not isinstance(result, Unknown):
                        failures.append(f"{instance.address}: {precondition['condition']}")
        return failures


class TerraformModel:
    """A root module and everything below it, for one set of root variable values."""

    def __init__(
        self,
        root_directory: Path,
        variables: Mapping[str, Any] | None = None,
        known: Mapping[str, Any] | None = None,
    ) -> None:
        self.root_directory = root_directory.resolve()
        self.known: dict[str, Any] = dict(known or {})
        self._sources: dict[Path, ModuleSource] = {}
        self.root = ModuleInstance(self, self.source(self.root_directory), "", dict(variables or {}))

    def source(self, directory: Path) -> ModuleSource:
        directory = directory.resolve()
        if directory not in self._sources:
            self._sources[directory] = ModuleSource.load(directory)
        return self._sources[directory]

    def modules(self) -> list[ModuleInstance]:
        """The root module and all descendants, depth first."""
        found: list[ModuleInstance] = []

        def walk(module: ModuleInstance) -> None:
            found.append(module)
            for child in module.children().values():
                walk(child)

        walk(self.root)
        return found

    def resources(self, type_name: str | None = None) -> list[ResourceInstance]:
        return [
            instance
            for module in self.modules()
            for instance in module.resources()
            if type_name is None or instance.type == type_name
        ]
