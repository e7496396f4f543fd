"""One route file per environment, shared by the file-based routers (nginx, Traefik).

Each file starts with one comment line that holds, as JSON, the environment's key,
the exact ``RouteTarget`` list the file was rendered from and a digest of the rest
of the file::

    # railyard-routes: {"tenant": "acme", ..., "routes": [...], "digest": "<sha256>"}

``observe()`` reads that header back instead of parsing proxy syntax, so it returns
exactly what ``apply()`` wrote. A file whose header is missing or broken, or whose
body no longer matches the digest (edited by hand), reads as *no routes*: the
reconciler sees drift and renders the file again.

Files are written atomically: a temp file in the same directory, fsync, ``os.replace``,
then fsync of the directory. A reader (nginx, Traefik's watcher) sees the old file
or the new one, never half of one. Temp names start with a dot and end in ``.tmp``,
so neither nginx's ``*.conf`` include nor Traefik's ``.yml`` filter ever loads them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.errors import ConflictError, ValidationError
from controller.state import EnvironmentKey, RouteTarget

HEADER_PREFIX = "# railyard-routes: "

# What may reach a proxy config unquoted. The manifest validates hosts already; these
# checks keep a bad value from ever becoming config syntax (``;``, ``{``, ``$``, spaces).
_HOST = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_PATH = re.compile(r"^/[A-Za-z0-9._~%!*(),:@+=/-]*$")
_UPSTREAM = re.compile(r"^([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class RouteFile:
    """What a route file says about itself: whose it is and what it routes."""

    key: EnvironmentKey
    routes: list[RouteTarget]


def file_name(key: EnvironmentKey, suffix: str) -> str:
    """``<slug><suffix>``; refuses slugs that could escape the directory."""
    slug = key.slug
    if not _SLUG.match(slug) or ".." in slug:
        raise ValidationError(f"environment {key} has no file-safe name: {slug!r}")
    return slug + suffix


def check_routes(key: EnvironmentKey, routes: Sequence[RouteTarget]) -> None:
    """Refuse values that cannot be rendered safely, or two routes for one host and path."""
    seen: set[tuple[str, str]] = set()
    for route in routes:
        where = f"{key}: route {route.host}{route.path}"
        if not _HOST.match(route.host):
            raise ValidationError(f"{where}: {route.host!r} is not a lower-case DNS host name")
        if not _PATH.match(route.path) or "//" in route.path:
            raise ValidationError(f"{where}: path must start with '/' and hold no spaces or ;{{}}$")
        for upstream in route.upstreams:
            if not _UPSTREAM.match(upstream):
                raise ValidationError(f"{where}: upstream {upstream!r} is not host:port")
        if (route.host, route.path) in seen:
            raise ValidationError(f"{where}: declared twice")
        seen.add((route.host, route.path))


def render(key: EnvironmentKey, routes: Sequence[RouteTarget], body: str) -> str:
    """The whole file: header line (routes + digest of ``body``), then ``body``."""
    header = {
        "tenant": key.tenant,
        "app": key.app,
        "env": key.env,
        "instance": key.instance,
        "routes": [_route_to_json(route) for route in routes],
        "digest": _digest(body),
    }
    return HEADER_PREFIX + json.dumps(header, separators=(",", ":")) + "\n" + body


def parse(text: str) -> RouteFile | None:
    """The file's key and routes, or None when the header is missing, broken or stale."""
    first, _, body = text.partition("\n")
    if not first.startswith(HEADER_PREFIX):
        return None
    try:
        header = json.loads(first[len(HEADER_PREFIX) :])
        if not isinstance(header, dict) or header.get("digest") != _digest(body):
            return None
        key = EnvironmentKey(
            tenant=_text(header["tenant"]),
            app=_text(header["app"]),
            env=_text(header["env"]),
            instance=str(header.get("instance", "")),
        )
        raw_routes = header["routes"]
        if not isinstance(raw_routes, list):
            return None
        return RouteFile(key, [_route_from_json(item) for item in raw_routes])
    except (ValueError, KeyError, TypeError):
        return None


def read(path: Path) -> RouteFile | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return parse(text)


def observed_routes(path: Path, key: EnvironmentKey) -> list[RouteTarget]:
    """The routes ``path`` holds for ``key``; empty when missing, unreadable or not ``key``'s."""
    found = read(path)
    if found is None or found.key != key:
        return []
    return found.routes


def owned_by_other(path: Path, key: EnvironmentKey) -> bool:
    """True when ``path`` holds another environment's routes (never delete those)."""
    found = read(path)
    return found is not None and found.key != key


def check_owner(path: Path, key: EnvironmentKey) -> None:
    """Refuse to overwrite another environment's file that happens to share the slug.

    ``EnvironmentKey.slug`` joins tenant, app and env with ``-``, so ``a-b/c/prod`` and
    ``a/b-c/prod`` share a file name. A file without a readable header is drift and
    may be overwritten."""
    found = read(path)
    if found is not None and found.key != key:
        raise ConflictError(
            f"route file {path.name} belongs to {found.key}, not {key} (same slug {key.slug!r})"
        )


def environments(directory: Path, suffix: str) -> list[EnvironmentKey]:
    """Keys of every readable route file in ``directory`` (files with a broken header
    are skipped: their owner cannot be known)."""
    if not directory.is_dir():
        return []
    keys: set[EnvironmentKey] = set()
    for path in directory.iterdir():
        if path.name.startswith(".") or not path.name.endswith(suffix):
            continue
        found = read(path)
        if found is not None:
            keys.add(found.key)
    return sorted(keys, key=lambda k: (k.tenant, k.app, k.env))


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, whole."""
    descriptor, temp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    sync_directory(path.parent)


def remove(path: Path) -> bool:
    """Delete ``path``; False when it was not there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    sync_directory(path.parent)
    return True


def sync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _route_to_json(route: RouteTarget) -> dict[str, Any]:
    return {
        "host": route.host,
        "path": route.path,
        "service": route.service,
        "upstreams": list(route.upstreams),
        "strip_prefix": route.strip_prefix,
    }


def _route_from_json(item: Any) -> RouteTarget:
    if not isinstance(item, dict):
        raise TypeError("a route must be an object")
    upstreams = item["upstreams"]
    strip_prefix = item.get("strip_prefix", False)
    if not isinstance(upstreams, list) or not isinstance(strip_prefix, bool):
        raise TypeError("upstreams must be a list and strip_prefix a boolean")
    return RouteTarget(
        host=_text(item["host"]),
        path=_text(item["path"]),
        service=_text(item["service"]),
        upstreams=tuple(_text(upstream) for upstream in upstreams),
        strip_prefix=strip_prefix,
    )
