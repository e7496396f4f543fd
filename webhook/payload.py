"""Typed reads from a decoded webhook body.

Forge payloads are large, loosely specified and differ between versions:
fields go missing, turn ``null`` or change type. Provider modules read them
through ``Payload`` by path (``payload.text("pull_request", "head", "sha")``):
optional fields fall back to an empty value, and ``require_*`` turns a missing
essential field into ``MalformedPayload`` (HTTP 400) instead of a crash.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from webhook.errors import MalformedPayload


class Payload:
    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def get(self, *path: str) -> Any:
        """The value at ``path``, or None when any step is missing or not an object."""
        value: Any = self._data
        for key in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    def has(self, *path: str) -> bool:
        return self.get(*path) is not None

    def text(self, *path: str) -> str:
        value = self.get(*path)
        return value if isinstance(value, str) else ""

    def first_text(self, *paths: tuple[str, ...]) -> str:
        """The first non-empty string among several candidate paths."""
        for path in paths:
            value = self.text(*path)
            if value:
                return value
        return ""

    def flag(self, *path: str) -> bool:
        return self.get(*path) is True

    def integer(self, *path: str) -> int | None:
        value = self.get(*path)
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return None

    def section(self, *path: str) -> Payload:
        value = self.get(*path)
        return Payload(value if isinstance(value, Mapping) else {})

    def sections(self, *path: str) -> Iterator[Payload]:
        """The objects in the list at ``path`` (non-objects are skipped)."""
        value = self.get(*path)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    yield Payload(item)

    def require_text(self, *path: str) -> str:
        value = self.text(*path)
        if not value:
            raise MalformedPayload(f"missing field {'.'.join(path)}")
        return value

    def require_integer(self, *path: str) -> int:
        value = self.integer(*path)
        if value is None:
            raise MalformedPayload(f"missing field {'.'.join(path)}")
        return value


def unique_urls(*candidates: str) -> tuple[str, ...]:
    """Non-empty candidates in order, each once."""
    return tuple(dict.fromkeys(url for url in candidates if url))
