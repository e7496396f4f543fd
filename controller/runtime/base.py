"""What the reconciler needs from a container engine, and nothing more.

Only the adapters import ``docker``; they map its exceptions to
``RuntimeUnavailable``/``BuildError``/``NotFoundError`` at this boundary.

Each environment has its own private network: its containers reach each other by
service name (``http://<service>:<port>``, what ``internal_url`` renders to) and
cannot see other environments'. Ports are still published on 127.0.0.1 for the
router and the health checks.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from controller.state import BuildSource, DesiredService, EnvironmentKey, ObservedContainer

BuildLog = Callable[[str], None]

NO_PEERS: Mapping[str, Sequence[str]] = MappingProxyType({})
"""A task pinned to no replica: every service name is left to the network's DNS."""


@dataclass(frozen=True)
class TaskResult:
    """How a one-off container (a release command) ended."""

    exit_code: int
    output: str
    pinned: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per service name: the addresses the task's ``/etc/hosts`` pinned it to (its peers
    that were still there); a service not named here was left to DNS."""


@dataclass(frozen=True)
class ContainerExit:
    """A replica of ours stopped running, as the engine reported it: only a hint to look
    again (what runs is read back with ``list_containers``), never state to trust."""

    environment: EnvironmentKey
    container: str
    """The container's name."""
    event: str
    """What happened: ``die`` (crashed, killed or stopped), ``oom`` (ran out of memory),
    ``stop`` or ``destroy`` (removed)."""


class Runtime(Protocol):
    async def list_containers(self, key: EnvironmentKey | None = None) -> list[ObservedContainer]:
        """Every container carrying ``railyard.managed=true`` (of one environment, if given),
        running or not."""
        ...

    async def image_exists(self, image: str) -> bool: ...

    async def build_image(
        self, image: str, context_tar: bytes, build: BuildSource, on_log: BuildLog
    ) -> None:
        """Build ``context_tar`` (an uncompressed tar of the build context) as ``image``."""
        ...

    async def pull_image(self, image: str, on_log: BuildLog) -> None: ...

    async def start_container(
        self, key: EnvironmentKey, service: DesiredService, revision: str, replica: int
    ) -> ObservedContainer:
        """Create and start one replica with our labels, its port published on
        127.0.0.1:<ephemeral>, on its environment's network (created if missing) under
        the service's name. A leftover container of the same name is replaced."""
        ...

    async def run_task(
        self,
        key: EnvironmentKey,
        service: DesiredService,
        command: tuple[str, ...],
        revision: str,
        *,
        timeout: float,
        peers: Mapping[str, Sequence[str]] = NO_PEERS,
    ) -> TaskResult:
        """Run ``command`` once in a container of ``service``'s image and settings (no port,
        never routed, on the environment's network so it can reach the services), wait
        for it to exit (killing it at ``timeout``), remove it, and return its exit code
        and last output lines.

        ``peers`` (service name -> container ids) pins those names to those containers'
        addresses on the network, ahead of DNS: during a rolling deploy the name also
        resolves to the old replicas, and a release must reach the new ones. A peer that
        is gone (or not on the network) is skipped; ``TaskResult.pinned`` says what held."""
        ...

    async def remove_container(self, container_id: str, *, stop_timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``stop_timeout``, then remove. Missing is not an error."""
        ...

    async def container_logs(self, container_id: str, *, tail: int = 50) -> str: ...

    def follow_logs(self, container_id: str, *, tail: int = 10) -> AsyncGenerator[str, None]:
        """The last ``tail`` lines, then each new line as it is written, until the container
        stops or the caller closes it (use ``contextlib.aclosing``, hence a generator rather
        than an iterator). ``NotFoundError`` if the container is missing."""
        ...

    def watch_exits(self) -> AsyncGenerator[ContainerExit, None]:
        """Each replica carrying ``railyard.managed=true`` that stops running from the
        moment this is first awaited on, of every installation sharing the engine (compare
        ``environment.instance``); release-task containers are left out. Runs until the
        caller closes it (``contextlib.aclosing``); ``RuntimeUnavailable`` when the engine
        goes away (watch again later: exits in between are the periodic resync's to find)."""
        ...

    async def remove_environment_resources(self, key: EnvironmentKey) -> None:
        """Remove every container of the environment still there, then its network.
        What is already gone is not an error. Volumes are kept (they hold data)."""
        ...

    async def list_networks(self) -> list[EnvironmentKey]:
        """The environments that have a network carrying our labels (to prune orphans)."""
        ...

    async def prune_images(self, key_prefix: str, keep: Iterable[str]) -> list[str]:
        """Remove tags ``railyard/<key_prefix>...`` that are not in ``keep`` and whose image
        no container uses (running or not); return the removed tags. Nothing else is
        touched; an image the engine refuses to remove (in use) is skipped. Pass
        ``"<tenant>-<app>-"`` to cover exactly one app's services."""
        ...

    async def close(self) -> None: ...
