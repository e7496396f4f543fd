"""The values the reconciler compares: what should run (Desired) and what does (Observed).

All frozen and hashable, so the planner can be a pure function of two values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Literal

from controller import labels

Strategy = Literal["rolling", "recreate"]


@dataclass(frozen=True)
class EnvironmentKey:
    """Names one environment of one app of one tenant; the unit of reconciliation."""

    tenant: str
    app: str
    env: str
    instance: str = ""
    """Which Railyard installation owns it, so several can share one Docker engine
    without taking each other's containers for orphans."""

    @property
    def slug(self) -> str:
        base = f"{self.tenant}-{self.app}-{self.env}"
        return f"{self.instance}-{base}" if self.instance else base

    def labels(self) -> dict[str, str]:
        owned = {
            labels.MANAGED: "true",
            labels.TENANT: self.tenant,
            labels.APP: self.app,
            labels.ENV: self.env,
        }
        if self.instance:
            owned[labels.INSTANCE] = self.instance
        return owned

    def __str__(self) -> str:
        return f"{self.tenant}/{self.app}/{self.env}"


@dataclass(frozen=True)
class BuildSource:
    """Where to build a service's image from: a directory of the commit's tree."""

    context: str = "."
    dockerfile: str = "Dockerfile"
    args: tuple[tuple[str, str], ...] = ()
    target: str | None = None


@dataclass(frozen=True)
class HealthCheck:
    """HTTP GET on ``path`` when set, else "running and port open"."""

    path: str | None = None
    port: int | None = None
    interval: float = 0.5
    timeout: float = 2.0
    retries: int = 3
    start_period: float = 0.0


@dataclass(frozen=True)
class Resources:
    memory_bytes: int | None = None
    cpus: float | None = None
    pids: int | None = None


@dataclass(frozen=True)
class Route:
    host: str
    path: str = "/"
    strip_prefix: bool = False


@dataclass(frozen=True)
class DesiredService:
    """One service of one environment, fully rendered: nothing left to look up."""

    name: str
    image: str
    build: BuildSource | None = None
    port: int | None = None
    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    replicas: int = 1
    healthcheck: HealthCheck = field(default_factory=HealthCheck)
    resources: Resources = field(default_factory=Resources)
    routes: tuple[Route, ...] = ()
    depends_on: tuple[str, ...] = ()
    strategy: Strategy = "rolling"
    drain_seconds: float = 2.0
    release: tuple[str, ...] | None = None
    volumes: tuple[tuple[str, str], ...] = ()
    read_only: bool = False
    capabilities: tuple[str, ...] = ()
    """Linux capabilities added back to the container (all others are dropped)."""

    @cached_property
    def spec_hash(self) -> str:
        """Hash of what the running container is made of.

        Routes, replica count, drain time and the release command are left out:
        changing them never needs a container to be replaced. Fields added later
        are left out while unset, so an upgrade does not replace every container.
        """
        body = asdict(self)
        for key in ("routes", "replicas", "drain_seconds", "release", "depends_on", "strategy"):
            body.pop(key)
        if not self.capabilities:
            body.pop("capabilities")
        encoded = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(encoded).hexdigest()[:16]


@dataclass(frozen=True)
class DesiredEnvironment:
    key: EnvironmentKey
    revision: str
    services: tuple[DesiredService, ...] = ()
    drain_seconds: float = 2.0
    """Drain before removing replicas of services that are gone from the manifest."""

    def service(self, name: str) -> DesiredService | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, DesiredService]:
        return {service.name: service for service in self.services}


@dataclass(frozen=True)
class ObservedContainer:
    """A container carrying our labels, as the runtime reports it."""

    id: str
    name: str
    service: str
    spec_hash: str
    revision: str
    replica: int
    state: str
    host_port: int | None = None
    environment: EnvironmentKey | None = None
    """The environment named by the container's labels."""

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def address(self) -> str | None:
        return f"127.0.0.1:{self.host_port}" if self.host_port else None


@dataclass(frozen=True)
class RouteTarget:
    """A route as the router holds it: where requests for host+path go."""

    host: str
    path: str
    service: str
    upstreams: tuple[str, ...]
    strip_prefix: bool = False


@dataclass(frozen=True)
class ObservedEnvironment:
    containers: tuple[ObservedContainer, ...] = ()
    routes: tuple[RouteTarget, ...] = ()
    images: frozenset[str] = frozenset()
    """Which of the desired images already exist on the runtime."""
