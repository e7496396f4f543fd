"""An in-memory Router for unit tests of the executor and reconciler.

It keeps each environment's routes in a dict and records every ``apply()`` in
``applied``, so a test can assert e.g. "routes switched exactly once, to the new
replicas". Setting ``fail_apply`` makes the next ``apply()`` calls raise
``RouterError`` without changing anything, as a proxy that rejects its config would.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.errors import RouterError
from controller.state import EnvironmentKey, RouteTarget


class FakeRouter:
    def __init__(self) -> None:
        self.routes: dict[EnvironmentKey, list[RouteTarget]] = {}
        self.applied: list[tuple[EnvironmentKey, list[RouteTarget]]] = []
        """Every successful apply(), in order."""
        self.removed: list[EnvironmentKey] = []
        self.fail_apply: int = 0
        """How many of the next apply() calls raise RouterError (-1: all of them)."""
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    async def apply(self, key: EnvironmentKey, routes: Sequence[RouteTarget]) -> None:
        if self.fail_apply:
            if self.fail_apply > 0:
                self.fail_apply -= 1
            raise RouterError(f"fake proxy rejected the routes of {key}")
        self.routes[key] = list(routes)
        self.applied.append((key, list(routes)))

    async def observe(self, key: EnvironmentKey) -> list[RouteTarget]:
        return list(self.routes.get(key, []))

    async def remove(self, key: EnvironmentKey) -> None:
        if self.routes.pop(key, None) is not None:
            self.removed.append(key)

    async def environments(self) -> list[EnvironmentKey]:
        return sorted(self.routes, key=lambda k: (k.tenant, k.app, k.env))

    async def close(self) -> None:
        self.closed = True

    def applies_for(self, key: EnvironmentKey) -> list[list[RouteTarget]]:
        """The route sets applied to ``key``, oldest first."""
        return [routes for applied_key, routes in self.applied if applied_key == key]
