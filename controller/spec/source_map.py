"""Where each value of a YAML document was written, so an error can name file:line:column.

A *path* is the tuple of mapping keys and list indices leading to a value, the
same shape as a pydantic error ``loc``: ``("services", "web", "routes", 0, "host")``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from controller.errors import ManifestIssue

PathPart = str | int
Path = tuple[PathPart, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Position:
    """A 1-based line and column."""

    line: int
    column: int


class Locator(Protocol):
    """Turns a path and a message into a located issue (one file, or several)."""

    @property
    def filename(self) -> str: ...

    def issue(self, path: Path, message: str, *, at_key: bool = False) -> ManifestIssue: ...


@dataclass(frozen=True)
class SourceMap:
    """Positions of every value (and of every mapping key) of one parsed file."""

    filename: str
    values: Mapping[Path, Position] = field(default_factory=dict)
    keys: Mapping[Path, Position] = field(default_factory=dict)

    def locate(self, path: Path, *, at_key: bool = False) -> Position | None:
        """The position of ``path``, or of its nearest ancestor that was written down."""
        if at_key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            position = self.values.get(path[:end])
            if position is not None:
                return position
        return None

    def issue(self, path: Path, message: str, *, at_key: bool = False) -> ManifestIssue:
        position = self.locate(path, at_key=at_key)
        return ManifestIssue(
            format_path(path),
            message,
            filename=self.filename,
            line=position.line if position else None,
            column=position.column if position else None,
        )


def format_path(path: Path) -> str:
    """``("services", "web", "routes", 0)`` -> ``services.web.routes[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(str(part)):
            text += f".{part}" if text else str(part)
        else:
            text += f"[{str(part)!r}]"
    return text


def sort_issues(issues: list[ManifestIssue]) -> list[ManifestIssue]:
    """File order: what comes first in the file is reported first."""
    return sorted(issues, key=lambda i: (i.line or 0, i.column or 0, i.path))
