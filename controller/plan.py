"""A Plan is data: an ordered tuple of frozen steps, each with a one-line ``str``.

The one ordering rule (``planner.plan`` builds every plan this way):

1. images first: build or pull each image that new replicas need, in dependency order;
2. then, service by service in dependency order: run the release command of a new version;
   for ``recreate`` services, remove the old replicas; start the new replicas; wait until
   they are healthy;
3. then ONE route switch for the whole environment, pointing at healthy replicas only;
4. then, only if something that served traffic goes away, a drain pause;
5. last, remove every container that is no longer wanted.

Nothing that serves traffic is touched before its replacement is healthy and routed, so a
plan cut short at any step leaves the old version serving.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.state import BuildSource, DesiredService


@dataclass(frozen=True)
class BuildImage:
    service: str
    image: str
    build: BuildSource

    def __str__(self) -> str:
        return f"build image {self.image} for {self.service} (context {self.build.context})"


@dataclass(frozen=True)
class PullImage:
    service: str
    image: str

    def __str__(self) -> str:
        return f"pull image {self.image} for {self.service}"


@dataclass(frozen=True)
class RunRelease:
    """The service's release command (e.g. migrations), once, from the new image."""

    service: DesiredService

    def __str__(self) -> str:
        command = " ".join(self.service.release or ())
        return f"run release of {self.service.name}: {command}"


@dataclass(frozen=True)
class StartReplica:
    service: DesiredService
    replica: int

    def __str__(self) -> str:
        spec = self.service.spec_hash[:8]
        return f"start {self.service.name} replica {self.replica} (spec {spec})"


@dataclass(frozen=True)
class AwaitHealthy:
    """Wait for the replicas this run starts, plus ``existing`` ones not yet trusted."""

    service: DesiredService
    existing: tuple[str, ...] = ()

    def __str__(self) -> str:
        check = self.service.healthcheck.path or ("port open" if self.service.port else "running")
        return f"wait until {self.service.name} is healthy ({check})"


@dataclass(frozen=True)
class RoutePlan:
    """A route whose upstreams are the healthy replicas of ``service`` at ``spec_hash``."""

    host: str
    path: str
    strip_prefix: bool
    service: str
    spec_hash: str

    def __str__(self) -> str:
        return f"{self.host}{self.path} -> {self.service}"


@dataclass(frozen=True)
class SwitchRoutes:
    routes: tuple[RoutePlan, ...]

    def __str__(self) -> str:
        if not self.routes:
            return "remove all routes"
        return "switch routes: " + ", ".join(str(route) for route in self.routes)


@dataclass(frozen=True)
class Drain:
    seconds: float

    def __str__(self) -> str:
        return f"drain for {self.seconds:g}s before removing old replicas"


@dataclass(frozen=True)
class RemoveContainer:
    container_id: str
    name: str
    service: str
    reason: str

    def __str__(self) -> str:
        return f"remove {self.name} ({self.reason})"


Step = (
    BuildImage
    | PullImage
    | RunRelease
    | StartReplica
    | AwaitHealthy
    | SwitchRoutes
    | Drain
    | RemoveContainer
)


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.steps

    def __str__(self) -> str:
        if not self.steps:
            return "nothing to do"
        return "\n".join(f"{index}. {step}" for index, step in enumerate(self.steps, start=1))

    def summary(self) -> str:
        """A short line for listings: counts of step kinds."""
        if not self.steps:
            return "no changes"
        counts: dict[str, int] = {}
        for step in self.steps:
            kind = type(step).__name__
            counts[kind] = counts.get(kind, 0) + 1
        return ", ".join(f"{_KIND_LABELS[kind]} {count}" for kind, count in counts.items())


_KIND_LABELS = {
    "BuildImage": "build",
    "PullImage": "pull",
    "RunRelease": "release",
    "StartReplica": "start",
    "AwaitHealthy": "health",
    "SwitchRoutes": "switch",
    "Drain": "drain",
    "RemoveContainer": "remove",
}
