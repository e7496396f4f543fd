"""Routes through Traefik's file provider: one dynamic-config YAML file per environment.

Traefik watches the directory (``providers.file.directory`` + ``watch: true``, see
``traefik/README.md``) and swaps its routing table in memory when a file changes, so
``apply()`` only has to write the file atomically: there is no reload to trigger.

For each route the file declares a router (``Host(`h`)``, plus ``PathPrefix(`/p`)``
unless the path is ``/``; entry point ``web``), a service, and a ``stripPrefix``
middleware when the route strips its prefix. Names are ``<slug>-<service>-<hash of
host+path>``, unique across files because the slug is.

A route with no upstreams points at a *weighted* service with an empty service list.
Traefik answers such a service with ``503 no available server``; an empty
``loadBalancer.servers`` would behave the same in Traefik v3 but breaks the published
file-provider schema (``minItems: 1``), which the tests validate against.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from controller.router import config_file
from controller.state import EnvironmentKey, RouteTarget

SUFFIX = ".yml"
ENTRY_POINT = "web"


class TraefikRouter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    async def apply(self, key: EnvironmentKey, routes: Sequence[RouteTarget]) -> None:
        config_file.check_routes(key, routes)
        path = self._path(key)
        config_file.check_owner(path, key)
        text = config_file.render(key, routes, render_dynamic_config(key, routes))
        self.directory.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(config_file.write_atomic, path, text)

    async def observe(self, key: EnvironmentKey) -> list[RouteTarget]:
        return config_file.observed_routes(self._path(key), key)

    async def remove(self, key: EnvironmentKey) -> None:
        path = self._path(key)
        if config_file.owned_by_other(path, key):
            return
        await asyncio.to_thread(config_file.remove, path)

    async def environments(self) -> list[EnvironmentKey]:
        return config_file.environments(self.directory, SUFFIX)

    async def close(self) -> None:
        """Nothing to stop: Traefik runs on its own and keeps serving the files."""

    def _path(self, key: EnvironmentKey) -> Path:
        return self.directory / config_file.file_name(key, SUFFIX)


def render_dynamic_config(key: EnvironmentKey, routes: Sequence[RouteTarget]) -> str:
    """The file provider's YAML for ``routes`` (without the Railyard header line)."""
    routers: dict[str, Any] = {}
    services: dict[str, Any] = {}
    middlewares: dict[str, Any] = {}
    for route in routes:
        name = _name(key, route)
        router: dict[str, Any] = {
            "rule": _rule(route),
            "service": name,
            "entryPoints": [ENTRY_POINT],
        }
        if route.strip_prefix and route.path != "/":
            middlewares[f"{name}-strip"] = {"stripPrefix": {"prefixes": [route.path]}}
            router["middlewares"] = [f"{name}-strip"]
        routers[name] = router
        services[name] = _service(route)
    http: dict[str, Any] = {}
    if routers:
        http["routers"] = routers
        http["services"] = services
    if middlewares:
        http["middlewares"] = middlewares
    return yaml.safe_dump({"http": http}, sort_keys=False, default_flow_style=False)


def _rule(route: RouteTarget) -> str:
    rule = f"Host(`{route.host}`)"
    if route.path != "/":
        rule += f" && PathPrefix(`{route.path}`)"
    return rule


def _service(route: RouteTarget) -> dict[str, Any]:
    if not route.upstreams:
        return {"weighted": {"services": []}}
    return {
        "loadBalancer": {
            "servers": [{"url": f"http://{upstream}"} for upstream in route.upstreams],
            "passHostHeader": True,
        }
    }


def _name(key: EnvironmentKey, route: RouteTarget) -> str:
    digest = hashlib.sha256(f"{route.host}{route.path}".encode()).hexdigest()[:10]
    service = re.sub(r"[^a-z0-9-]+", "-", route.service.lower()).strip("-") or "route"
    return f"{key.slug}-{service}-{digest}"
