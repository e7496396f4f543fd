"""What the reconciler needs from a container engine, and nothing more.

Only the adapters import ``docker``; they map its exceptions to
``RuntimeUnavailable``/``BuildError`` at this boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from controller.state import BuildSource, DesiredService, EnvironmentKey, ObservedContainer

BuildLog = Callable[[str], None]


@dataclass(frozen=True)
class TaskResult:
    """How a one-off container (a release command) ended."""

    exit_code: int
    output: str


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
        127.0.0.1:<ephemeral>. A leftover container of the same name is replaced."""
        ...

    async def run_task(
        self,
        key: EnvironmentKey,
        service: DesiredService,
        command: tuple[str, ...],
        revision: str,
        *,
        timeout: float,
    ) -> TaskResult:
        """Run ``command`` once in a container of ``service``'s image and settings (no port,
        never routed), wait for it to exit (killing it at ``timeout``), remove it, and
        return its exit code and last output lines."""
        ...

    async def remove_container(self, container_id: str, *, stop_timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``stop_timeout``, then remove. Missing is not an error."""
        ...

    async def container_logs(self, container_id: str, *, tail: int = 50) -> str: ...

    async def close(self) -> None: ...
