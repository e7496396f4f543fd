"""The Runtime port on a local Docker engine, through the docker SDK.

The Docker adapter is this module and its siblings ``docker_options`` (names, labels,
hardened create options: commands as data), ``docker_networks`` (one network per
environment), ``docker_logs`` (build progress, followed container logs),
``docker_events`` (replicas that stopped running, from the engine's event stream) and
``docker_calls`` (each blocking SDK call in a worker thread, its failures mapped);
with ``runtime/swarm.py`` they alone import ``docker``. Every foreign exception is
mapped inside the adapter:

    docker.errors.ImageNotFound on start   -> RuntimeUnavailable naming the image
    docker.errors.NotFound on logs         -> NotFoundError
    docker.errors.APIError during build    -> BuildError (with the engine's reason)
    docker.errors.APIError                 -> RuntimeUnavailable (with the explanation)
    the engine ending its event stream     -> RuntimeUnavailable (watch again later)
    DockerException, OSError (requests)    -> RuntimeUnavailable("Docker engine unreachable: ...")

Docker never restarts a container: repairing is the reconciler's job, so that every
repair is observed and recorded.
"""

from __future__ import annotations

import io
import logging
import math
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import docker
import docker.errors

from controller import labels
from controller.errors import BuildError, NotFoundError, RuntimeUnavailable
from controller.runtime import docker_events
from controller.runtime.base import NO_PEERS, BuildLog, ContainerExit, TaskResult
from controller.runtime.docker_calls import call_engine
from controller.runtime.docker_logs import (
    FOLLOW_BUFFER_LINES,
    FOLLOW_JOIN_SECONDS,
    FOLLOW_POLL_SECONDS,
    follow_stream,
    log_lines,
    progress_chunks,
    stream_error,
    stream_lines,
)
from controller.runtime.docker_networks import (
    ensure_network,
    extra_hosts,
    network_options,
    networks_of,
    peer_addresses,
    remove_network,
)
from controller.runtime.docker_options import (
    DEFAULT_MEMORY_BYTES,
    DEFAULT_PIDS,
    container_labels,
    container_name,
    container_options,
    docker_name,
    environment_of,
    label_filters,
    network_name,
    observe,
    task_options,
    volume_name,
)
from controller.state import BuildSource, DesiredService, EnvironmentKey, ObservedContainer

__all__ = [
    "BUILD_LOG_TAIL_LINES",
    "DEFAULT_MEMORY_BYTES",
    "DEFAULT_PIDS",
    "FOLLOW_BUFFER_LINES",
    "FOLLOW_JOIN_SECONDS",
    "FOLLOW_POLL_SECONDS",
    "IMAGE_REPOSITORY",
    "DockerRuntime",
    "container_labels",
    "container_name",
    "container_options",
    "docker_name",
    "network_name",
    "observe",
    "task_options",
    "volume_name",
]

log = logging.getLogger(__name__)

BUILD_LOG_TAIL_LINES = 20
IMAGE_REPOSITORY = "railyard/"
"""Where ``image_for`` puts every image Railyard builds; pruning never looks elsewhere."""


class DockerRuntime:
    """Runs each environment's replicas as labelled containers on one Docker engine."""

    def __init__(self, client_factory: Callable[[], docker.DockerClient] | None = None) -> None:
        self._client_factory = client_factory or docker.from_env
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self._network_locks: dict[str, threading.Lock] = {}

    def _docker(self) -> docker.DockerClient:
        """The SDK client, created on first use (from_env asks the engine for its API version)."""
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    async def list_containers(self, key: EnvironmentKey | None = None) -> list[ObservedContainer]:
        wanted = key.labels() if key is not None else {labels.MANAGED: "true"}
        filters = label_filters(wanted)

        def list_sync() -> list[ObservedContainer]:
            found = self._docker().containers.list(all=True, filters=filters, ignore_removed=True)
            observed = [observe(container) for container in found]
            # The label filter cannot say "no instance label": match the key exactly.
            return [c for c in observed if key is None or c.environment == key]

        observed = await call_engine("list containers", list_sync)
        return sorted(observed, key=lambda c: (c.service, c.replica, c.name))

    async def image_exists(self, image: str) -> bool:
        def exists_sync() -> bool:
            try:
                self._docker().images.get(image)
            except docker.errors.ImageNotFound:
                return False
            return True

        return await call_engine(f"inspect image {image}", exists_sync)

    async def build_image(
        self, image: str, context_tar: bytes, build: BuildSource, on_log: BuildLog
    ) -> None:
        def start_sync() -> Iterator[dict[str, Any]]:
            return iter(
                self._docker().api.build(
                    fileobj=io.BytesIO(context_tar),
                    custom_context=True,
                    dockerfile=build.dockerfile,
                    buildargs=dict(build.args),
                    target=build.target,
                    tag=image,
                    labels={labels.MANAGED: "true"},
                    rm=True,
                    forcerm=True,
                    pull=False,
                    decode=True,
                )
            )

        tail: deque[str] = deque(maxlen=BUILD_LOG_TAIL_LINES)
        async with aclosing(progress_chunks(f"build {image}", start_sync)) as chunks:
            async for chunk in chunks:
                for line in stream_lines(chunk):
                    tail.append(line)
                    on_log(line)
                error = stream_error(chunk)
                if error is not None:
                    if not tail or tail[-1] != error:
                        tail.append(error)
                    log_tail = "\n".join(tail)
                    raise BuildError(f"building {image} failed: {error}", log_tail=log_tail)

    async def pull_image(self, image: str, on_log: BuildLog) -> None:
        def start_sync() -> Iterator[dict[str, Any]]:
            return iter(self._docker().api.pull(image, stream=True, decode=True))

        async with aclosing(progress_chunks(f"pull {image}", start_sync)) as chunks:
            async for chunk in chunks:
                error = stream_error(chunk)
                if error is not None:
                    raise RuntimeUnavailable(f"pulling {image} failed: {error}")
                if "progress" not in chunk:
                    for line in stream_lines(chunk):
                        on_log(line)

    async def start_container(
        self, key: EnvironmentKey, service: DesiredService, revision: str, replica: int
    ) -> ObservedContainer:
        options = container_options(key, service, revision, replica)

        def start_sync() -> ObservedContainer:
            client = self._docker()
            _remove_named(client, options["name"])
            for name in options["volumes"]:
                client.volumes.create(name=name, labels=key.labels())
            network = self._ensure_network(client, key)
            joined = options | network_options(client, network, alias=service.name)
            try:
                container = client.containers.create(service.image, **joined)
            except docker.errors.ImageNotFound as exc:
                raise RuntimeUnavailable(
                    f"image {service.image!r} is not in the Docker engine: build or pull it first"
                ) from exc
            try:
                container.start()
                container.reload()
            except docker.errors.APIError:
                _remove_named(client, container.id)
                raise
            return observe(container)

        return await call_engine(f"start {options['name']}", start_sync)

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
        options = task_options(key, service, command, revision)

        def run_sync() -> TaskResult:
            client = self._docker()
            _remove_named(client, options["name"])
            network = self._ensure_network(client, key)
            joined = options | network_options(client, network, alias=None)
            pinned = peer_addresses(client, network, peers)
            if pinned:
                joined["extra_hosts"] = extra_hosts(pinned)
            try:
                container = client.containers.create(service.image, **joined)
            except docker.errors.ImageNotFound as exc:
                raise RuntimeUnavailable(f"image {service.image!r} is not in the engine") from exc
            try:
                container.start()
                try:
                    result = container.wait(timeout=timeout)
                    exit_code = int(result.get("StatusCode", -1))
                except (OSError, docker.errors.APIError):
                    container.kill()
                    exit_code = -1
                output: bytes = container.logs(stdout=True, stderr=True, tail=50)
                text = output.decode("utf-8", errors="replace")
                if exit_code == -1:
                    text += f"\n(killed after {timeout:g}s)"
                return TaskResult(exit_code, text, pinned)
            finally:
                _remove_named(client, container.id)

        return await call_engine(f"run task {options['name']}", run_sync)

    async def remove_container(self, container_id: str, *, stop_timeout: float = 10.0) -> None:
        def remove_sync() -> None:
            try:
                container = self._docker().containers.get(container_id)
                if container.status in ("running", "restarting", "paused"):
                    container.stop(timeout=math.ceil(stop_timeout))
                container.remove(force=True)
            except docker.errors.NotFound:
                return

        await call_engine(f"remove container {container_id}", remove_sync)

    async def container_logs(self, container_id: str, *, tail: int = 50) -> str:
        def logs_sync() -> str:
            try:
                container = self._docker().containers.get(container_id)
            except docker.errors.NotFound as exc:
                raise NotFoundError(f"container {container_id} not found") from exc
            output: bytes = container.logs(stdout=True, stderr=True, tail=tail)
            return output.decode("utf-8", errors="replace")

        return await call_engine(f"read logs of {container_id}", logs_sync)

    async def follow_logs(self, container_id: str, *, tail: int = 10) -> AsyncGenerator[str, None]:
        def open_sync() -> Iterator[bytes]:
            try:
                container = self._docker().containers.get(container_id)
            except docker.errors.NotFound as exc:
                raise NotFoundError(f"container {container_id} not found") from exc
            stream: Iterator[bytes] = container.logs(
                stdout=True, stderr=True, stream=True, follow=True, tail=tail
            )
            return stream

        what = f"follow logs of {container_id}"
        async with aclosing(follow_stream(open_sync, log_lines, what)) as lines:
            async for line in lines:
                yield line

    async def watch_exits(self) -> AsyncGenerator[ContainerExit, None]:
        async with aclosing(docker_events.watch_exits(self._docker)) as exits:
            async for found in exits:
                yield found

    def _ensure_network(self, client: docker.DockerClient, key: EnvironmentKey) -> str:
        """``ensure_network``, with creates serialised per network name in this process."""
        name = network_name(key)
        with self._client_lock:
            lock = self._network_locks.setdefault(name, threading.Lock())
        with lock:
            return ensure_network(client, key)

    async def remove_environment_resources(self, key: EnvironmentKey) -> None:
        def remove_sync() -> None:
            client = self._docker()
            for container in client.api.containers(all=True, filters=label_filters(key.labels())):
                if environment_of(container.get("Labels") or {}) == key:
                    _remove_named(client, str(container["Id"]))
            for network in networks_of(client, key):
                remove_network(client, str(network["Id"]))

        await call_engine(f"remove the resources of {key}", remove_sync)

    async def list_networks(self) -> list[EnvironmentKey]:
        def list_sync() -> list[EnvironmentKey]:
            found = self._docker().api.networks(filters=label_filters({labels.MANAGED: "true"}))
            return [
                owner
                for network in found
                if (owner := environment_of(network.get("Labels") or {})) is not None
            ]

        keys = set(await call_engine("list networks", list_sync))
        return sorted(keys, key=lambda k: (k.instance, k.tenant, k.app, k.env))

    async def prune_images(self, key_prefix: str, keep: Iterable[str]) -> list[str]:
        prefix = IMAGE_REPOSITORY + key_prefix
        kept = set(keep)

        def prune_sync() -> list[str]:
            api = self._docker().api
            in_use = {str(c.get("ImageID")) for c in api.containers(all=True)}
            removed: list[str] = []
            for image in api.images():
                if image.get("Id") in in_use:
                    continue
                unwanted = [
                    tag
                    for tag in image.get("RepoTags") or []
                    if tag.rpartition(":")[0].startswith(prefix) and tag not in kept
                ]
                removed.extend(tag for tag in unwanted if _remove_image(api, tag))
            return sorted(removed)

        return await call_engine(f"prune images {prefix}*", prune_sync)

    async def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            await call_engine("close the client", client.close)


def _remove_named(client: Any, name_or_id: str) -> None:
    """Force-remove a container (a leftover from a crash, or a failed start) if it exists."""
    try:
        client.containers.get(name_or_id).remove(force=True)
    except docker.errors.NotFound:
        return


def _remove_image(api: Any, tag: str) -> bool:
    """Untag (and delete, if it was the last tag) ``tag``; False if the engine refuses."""
    try:
        api.remove_image(tag)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: a container uses it (maybe one created just now)
            raise
        log.info("kept image %s: %s", tag, exc.explanation or exc)
        return False
    return True
