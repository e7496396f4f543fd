"""An in-memory Runtime for unit tests of the executor and reconciler.

It behaves like the Docker adapter where callers can tell the difference:
containers carry the same fields, a start replaces a leftover of the same name,
starting needs the image to be present, removing a missing container is fine.
Failures are injected by name, and ``kill`` simulates a container dying by hand.
Watchers (``watch_exits``) hear of every replica that stops running: killed (``die``),
exiting on start (``die``) or removed (``destroy``); ``end_watches`` ends their streams
as an engine going away would. ``operations`` records every change in order (``build``,
``pull``, ``start``, ``remove``, ``remove network``, ``remove image``), so tests can
assert e.g. that new replicas start before old ones go. Environment networks are just
the set of keys in ``networks``: created on start, idempotently, as Docker's are.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from controller.errors import BuildError, NotFoundError, RuntimeUnavailable
from controller.runtime.base import NO_PEERS, BuildLog, ContainerExit, TaskResult
from controller.state import BuildSource, DesiredService, EnvironmentKey, ObservedContainer

FOLLOW_POLL_SECONDS = 0.01


@dataclass
class _Entry:
    key: EnvironmentKey
    container: ObservedContainer
    image: str


class FakeRuntime:
    def __init__(self, images: Iterable[str] = ()) -> None:
        self.images: set[str] = set(images)
        self.fail_build: set[str] = set()
        """Images whose build fails with BuildError."""
        self.fail_pull: set[str] = set()
        """Images whose pull fails with RuntimeUnavailable (others "pull" fine)."""
        self.fail_start: set[str] = set()
        """Service names whose containers fail to start with RuntimeUnavailable."""
        self.exit_on_start: set[str] = set()
        """Service names whose containers start, then exit at once (a crashing app)."""
        self.task_exit_codes: dict[str, int] = {}
        """Per service name: the exit code its release command ends with (default 0)."""
        self.crash_logs: dict[str, str] = {}
        """Per service name: what a container that exits on start printed first."""
        self.task_peers: dict[str, dict[str, tuple[str, ...]]] = {}
        """Per service name: the ``peers`` its last task was given (service -> ids)."""
        self.unavailable = False
        """When true, every call raises RuntimeUnavailable, as if the engine were down."""
        self.built: list[str] = []
        self.pulled: list[str] = []
        self.operations: list[str] = []
        self.logs: dict[str, str] = {}
        """Per container id: its output so far; append to it to "write" more lines."""
        self.networks: set[EnvironmentKey] = set()
        self.closed = False
        self._entries: dict[str, _Entry] = {}
        self._watchers: list[asyncio.Queue[ContainerExit | None]] = []
        self._ports = itertools.count(40000)

    def _check(self) -> None:
        if self.unavailable:
            raise RuntimeUnavailable("Docker engine unreachable: fake engine is down")

    async def list_containers(self, key: EnvironmentKey | None = None) -> list[ObservedContainer]:
        self._check()
        found = [e.container for e in self._entries.values() if key is None or e.key == key]
        return sorted(found, key=lambda c: (c.service, c.replica, c.name))

    async def image_exists(self, image: str) -> bool:
        self._check()
        return image in self.images

    async def build_image(
        self, image: str, context_tar: bytes, build: BuildSource, on_log: BuildLog
    ) -> None:
        self._check()
        self.operations.append(f"build {image}")
        on_log(f"Step 1/1 : building {image} from {build.dockerfile}")
        if image in self.fail_build:
            raise BuildError(f"building {image} failed", log_tail="RUN false\nexit code 1")
        self.built.append(image)
        self.images.add(image)

    async def pull_image(self, image: str, on_log: BuildLog) -> None:
        self._check()
        self.operations.append(f"pull {image}")
        if image in self.fail_pull:
            raise RuntimeUnavailable(f"pulling {image} failed: registry unreachable")
        on_log(f"pulled {image}")
        self.pulled.append(image)
        self.images.add(image)

    async def start_container(
        self, key: EnvironmentKey, service: DesiredService, revision: str, replica: int
    ) -> ObservedContainer:
        self._check()
        name = f"ry-{key.slug}-{service.name}-{service.spec_hash[:8]}-{replica}"
        self.operations.append(f"start {name}")
        if service.image not in self.images:
            raise RuntimeUnavailable(f"image {service.image!r} is not in the Docker engine")
        if service.name in self.fail_start:
            raise RuntimeUnavailable(f"Docker engine failed to start {name}: injected failure")
        for leftover in [i for i, e in self._entries.items() if e.container.name == name]:
            self._drop(leftover)
        self.networks.add(key)
        exited = service.name in self.exit_on_start
        container = ObservedContainer(
            id=uuid.uuid4().hex,
            name=name,
            service=service.name,
            spec_hash=service.spec_hash,
            revision=revision,
            replica=replica,
            state="exited" if exited else "running",
            host_port=None if exited or service.port is None else next(self._ports),
            environment=key,
        )
        self._entries[container.id] = _Entry(key, container, service.image)
        if exited:
            self.logs[container.id] = self.crash_logs.get(service.name, "")
            self._tell_watchers(key, name, "die")
        return container

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
        """Pins each peer still running by its container name (the fake has no network
        addresses); vanished ones are skipped, as Docker's adapter does."""
        self._check()
        self.operations.append(f"task {service.name}: {' '.join(command)}")
        self.networks.add(key)
        self.task_peers[service.name] = {name: tuple(ids) for name, ids in peers.items()}
        pinned: dict[str, tuple[str, ...]] = {}
        for name, ids in peers.items():
            entries = [self._entries.get(container_id) for container_id in ids]
            there = [e.container.name for e in entries if e is not None and e.container.running]
            if there:
                pinned[name] = tuple(there)
        exit_code = self.task_exit_codes.get(service.name, 0)
        return TaskResult(exit_code, f"ran {' '.join(command)}\n", pinned)

    async def remove_container(self, container_id: str, *, stop_timeout: float = 10.0) -> None:
        self._check()
        entry = self._drop(container_id)
        if entry is not None:
            self.operations.append(f"remove {entry.container.name}")

    async def container_logs(self, container_id: str, *, tail: int = 50) -> str:
        self._check()
        if container_id not in self._entries:
            raise NotFoundError(f"container {container_id} not found")
        lines = self.logs.get(container_id, "").splitlines()[-tail:] if tail > 0 else []
        return "".join(f"{line}\n" for line in lines)

    async def follow_logs(self, container_id: str, *, tail: int = 10) -> AsyncGenerator[str, None]:
        """The last ``tail`` lines, then lines appended to ``logs`` while it runs."""
        self._check()
        if container_id not in self._entries:
            raise NotFoundError(f"container {container_id} not found")
        lines = self.logs.get(container_id, "").splitlines()
        sent = max(len(lines) - tail, 0)
        while True:
            entry = self._entries.get(container_id)
            running = entry is not None and entry.container.running
            lines = self.logs.get(container_id, "").splitlines()
            for line in lines[sent:]:
                yield line
            sent = len(lines)
            if not running:  # everything it wrote before it stopped has been sent
                return
            await asyncio.sleep(FOLLOW_POLL_SECONDS)

    async def watch_exits(self) -> AsyncGenerator[ContainerExit, None]:
        self._check()
        heard: asyncio.Queue[ContainerExit | None] = asyncio.Queue()
        self._watchers.append(heard)
        try:
            while (found := await heard.get()) is not None:
                yield found
            raise RuntimeUnavailable("Docker engine unreachable: fake engine went away")
        finally:
            self._watchers.remove(heard)

    @property
    def watching(self) -> int:
        """How many ``watch_exits`` streams are open."""
        return len(self._watchers)

    def end_watches(self) -> None:
        """End every open ``watch_exits`` stream with RuntimeUnavailable (engine restarted)."""
        for heard in self._watchers:
            heard.put_nowait(None)

    async def remove_environment_resources(self, key: EnvironmentKey) -> None:
        self._check()
        for container_id in [i for i, e in self._entries.items() if e.key == key]:
            await self.remove_container(container_id)
        if key in self.networks:
            self.networks.discard(key)
            self.operations.append(f"remove network ry-{key.slug}")

    async def list_networks(self) -> list[EnvironmentKey]:
        self._check()
        return sorted(self.networks, key=lambda k: (k.instance, k.tenant, k.app, k.env))

    async def prune_images(self, key_prefix: str, keep: Iterable[str]) -> list[str]:
        self._check()
        kept, used = set(keep), {e.image for e in self._entries.values()}
        removed = sorted(
            image
            for image in self.images
            if image.rpartition(":")[0].startswith(f"railyard/{key_prefix}")
            and image not in kept
            and image not in used
        )
        for image in removed:
            self.images.discard(image)
            self.operations.append(f"remove image {image}")
        return removed

    async def close(self) -> None:
        self.closed = True

    def kill(self, container_id: str) -> None:
        """Simulate a container dying outside Railyard (OOM, ``docker kill``)."""
        entry = self._entries[container_id]
        entry.container = replace(entry.container, state="exited", host_port=None)
        self._tell_watchers(entry.key, entry.container.name, "die")

    def _drop(self, container_id: str) -> _Entry | None:
        entry = self._entries.pop(container_id, None)
        if entry is not None:
            self._tell_watchers(entry.key, entry.container.name, "destroy")
        return entry

    def _tell_watchers(self, key: EnvironmentKey, name: str, event: str) -> None:
        for heard in self._watchers:
            heard.put_nowait(ContainerExit(key, name, event))
