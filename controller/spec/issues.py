"""Turn pydantic's validation errors into ``ManifestIssue``s a person can act on.

pydantic says ``Input should be less than or equal to 65535`` at
``('services', 'web', 'port')``; the user should read
``paas.yaml:4:11: services.web.port: must be at most 65535, got 70000``.
Unknown keys get a did-you-mean from the keys the model accepts.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from controller.errors import ManifestIssue
from controller.spec.fields import show
from controller.spec.source_map import Path, sort_issues

_KINDS = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}
_TOP_LEVEL_KINDS = {"services": ("services",), "routes": ("routes",)}


class Locate(Protocol):
    """Makes the issue for a path: ``SourceMap.issue`` or anything placing paths like it."""

    def __call__(self, path: Path, message: str, *, at_key: bool = False) -> ManifestIssue: ...


def issues_from_validation(
    error: PydanticValidationError, model: type[BaseModel], locate: Locate
) -> list[ManifestIssue]:
    issues = [_issue(detail, model, locate) for detail in error.errors(include_url=False)]
    return sort_issues(_dedupe(issues))


def _issue(detail: ErrorDetails, model: type[BaseModel], locate: Locate) -> ManifestIssue:
    loc: Path = tuple(detail["loc"])
    kind = detail["type"]
    value = detail.get("input")
    context: Mapping[str, Any] = detail.get("ctx") or {}
    if loc and loc[-1] == "[key]":
        return locate(loc[:-1], detail["msg"], at_key=True)
    if kind == "extra_forbidden":
        return locate(loc, _unknown_key(loc, model), at_key=True)
    if kind == "missing":
        return locate(loc[:-1], f"missing required key {show(str(loc[-1]))}")
    if not loc and kind in _TOP_LEVEL_KINDS:
        loc = _TOP_LEVEL_KINDS[kind]
    return locate(loc, _message(kind, value, context, detail["msg"]))


def _message(kind: str, value: Any, context: Mapping[str, Any], fallback: str) -> str:
    if kind in _KINDS:
        return f"expected {_KINDS[kind]}, got {show(value)}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = context.get("ge", context.get("gt"))
        return f"must be at least {_number(bound)}, got {show(value)}"
    if kind in ("less_than_equal", "less_than"):
        bound = context.get("le", context.get("lt"))
        return f"must be at most {_number(bound)}, got {show(value)}"
    if kind == "literal_error":
        return f"expected {context.get('expected', '')}, got {show(value)}"
    if kind == "finite_number":
        return f"expected a finite number, got {show(value)}"
    return fallback.removeprefix("Value error, ")


def _number(bound: Any) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _unknown_key(loc: Path, model: type[BaseModel]) -> str:
    key = str(loc[-1])
    allowed = _allowed_keys(model, loc[:-1])
    message = f"unknown key {show(key)}"
    if not allowed:
        return message
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean {show(close[0])}?"
    return f"{message}; expected one of: {', '.join(allowed)}"


def _allowed_keys(model: type[BaseModel], loc: Path) -> list[str]:
    """The keys accepted at ``loc``, found by walking the model's field annotations."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        else:
            args = typing.get_args(current)
            if not args:
                return []
            current = args[-1] if typing.get_origin(current) is not tuple else args[0]
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, ...]`` -> X; ``X | None`` -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0]
        else:
            return annotation


def _dedupe(issues: list[ManifestIssue]) -> list[ManifestIssue]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for issue in issues:
        if (issue.path, issue.message) not in seen:
            seen.add((issue.path, issue.message))
            unique.append(issue)
    return unique
