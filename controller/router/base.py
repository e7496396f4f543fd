"""What the reconciler needs from a proxy: one config per environment, swapped atomically."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from controller.state import EnvironmentKey, RouteTarget


class Router(Protocol):
    async def start(self) -> None:
        """Make the proxy ready to serve (start a managed process, create directories)."""
        ...

    async def apply(self, key: EnvironmentKey, routes: Sequence[RouteTarget]) -> None:
        """Replace the environment's whole route set in one atomic change.

        A route with no upstreams answers 503. Returns once the proxy serves the new set."""
        ...

    async def observe(self, key: EnvironmentKey) -> list[RouteTarget]:
        """The routes the proxy holds for the environment (read back from its config)."""
        ...

    async def remove(self, key: EnvironmentKey) -> None:
        """Drop every route of the environment. Missing is not an error."""
        ...

    async def environments(self) -> list[EnvironmentKey]:
        """Every environment the router holds routes for (to find orphans)."""
        ...

    async def close(self) -> None: ...
