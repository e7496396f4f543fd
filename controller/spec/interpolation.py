"""``${{ ... }}`` references inside env values, checked when parsed and filled in when rendered.

Three namespaces:

* ``secrets.NAME``          a secret stored for the app (never written in the repository)
* ``railyard.<attribute>``  facts about the deployment: pr, revision, environment, branch, app
* ``services.<name>.<attr>`` another service: url (public, from its first route),
                            internal_url (``http://<name>:<port>``) or host

Every ``${{`` starts a reference; there is no escape, which keeps the rule simple.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

RAILYARD_ATTRIBUTES = ("pr", "revision", "environment", "branch", "app")
SERVICE_ATTRIBUTES = ("url", "internal_url", "host")
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_OPEN = "${{"
_CLOSE = "}}"
_EXAMPLES = (
    "expected ${{ secrets.NAME }}, ${{ railyard.pr }} (or revision, environment, branch, app) "
    "or ${{ services.<name>.url }} (or internal_url, host)"
)


@dataclass(frozen=True)
class Reference:
    """One ``${{ namespace.name[.attribute] }}`` found at ``start:end`` of a string."""

    namespace: str
    name: str
    attribute: str | None
    start: int
    end: int

    def __str__(self) -> str:
        inner = f"{self.namespace}.{self.name}" + (f".{self.attribute}" if self.attribute else "")
        return "${{ " + inner + " }}"


def find_references(value: str) -> list[Reference]:
    """Every reference in ``value``; raises ``ValueError`` naming the first bad one."""
    references: list[Reference] = []
    position = 0
    while (start := value.find(_OPEN, position)) != -1:
        end = value.find(_CLOSE, start + len(_OPEN))
        if end == -1:
            raise ValueError('"${{" is not closed by "}}"')
        inner = value[start + len(_OPEN) : end].strip()
        references.append(_parse(inner, start, end + len(_CLOSE)))
        position = end + len(_CLOSE)
    return references


def _parse(inner: str, start: int, end: int) -> Reference:
    parts = inner.split(".")
    namespace = parts[0]
    shown = "${{ " + inner + " }}"
    if namespace == "secrets":
        if len(parts) != 2 or not SECRET_NAME.fullmatch(parts[1]):
            raise ValueError(f"{shown}: a secret is named like ${{{{ secrets.DATABASE_URL }}}}")
        return Reference("secrets", parts[1], None, start, end)
    if namespace == "railyard":
        if len(parts) != 2 or parts[1] not in RAILYARD_ATTRIBUTES:
            raise ValueError(f"{shown}: railyard.* is one of {', '.join(RAILYARD_ATTRIBUTES)}")
        return Reference("railyard", parts[1], None, start, end)
    if namespace == "services":
        if len(parts) != 3 or parts[2] not in SERVICE_ATTRIBUTES:
            raise ValueError(
                f"{shown}: write services.<name>.url (or {', '.join(SERVICE_ATTRIBUTES[1:])})"
            )
        return Reference("services", parts[1], parts[2], start, end)
    close = difflib.get_close_matches(namespace, ["secrets", "railyard", "services"], n=1)
    if close:
        fixed = "${{ " + ".".join([close[0], *parts[1:]]) + " }}"
        raise ValueError(f"unknown reference {shown}; did you mean {fixed}?")
    raise ValueError(f"unknown reference {shown}: {_EXAMPLES}")


def substitute(value: str, resolve: Callable[[Reference], str]) -> str:
    """``value`` with each reference replaced by ``resolve(reference)`` (never re-scanned)."""
    pieces: list[str] = []
    position = 0
    for reference in find_references(value):
        pieces.append(value[position : reference.start])
        pieces.append(resolve(reference))
        position = reference.end
    pieces.append(value[position:])
    return "".join(pieces)
