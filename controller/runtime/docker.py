"""The Runtime port on a local Docker engine, through the docker SDK.

This is one of the two modules that import ``docker``. Every SDK call blocks, so
each runs in a worker thread; every foreign exception is mapped here:

    docker.errors.ImageNotFound on start   -> RuntimeUnavailable naming the image
    docker.errors.APIError during build    -> BuildError (with the engine's reason)
    docker.errors.APIError                 -> RuntimeUnavailable (with the explanation)
    DockerException, OSError (requests)    -> RuntimeUnavailable("Docker engine unreachable: ...")

Containers are hardened by default (no capabilities, no-new-privileges, an init
process, memory and pids limits, no host mounts) and never restarted by Docker:
repairing is the reconciler's job, so that every repair is observed and recorded.
"""

from __future__ import annotations

import asyncio
import io
import math
import re
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from functools import partial
from typing import Any, TypeVar

import docker
import docker.errors
from docker.types import LogConfig

from controller import labels
from controller.errors import BuildError, NotFoundError, RuntimeUnavailable
from controller.runtime.base import BuildLog, TaskResult
from controller.state import BuildSource, DesiredService, EnvironmentKey, ObservedContainer

T = TypeVar("T")

DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024
DEFAULT_PIDS = 512
BUILD_LOG_TAIL_LINES = 20
_NAME_FORBIDDEN = re.compile(r"[^a-zA-Z0-9_.-]")


def docker_name(raw: str) -> str:
    """``raw`` with every character Docker refuses in a container/volume name replaced."""
    return _NAME_FORBIDDEN.sub("-", raw)


def container_name(key: EnvironmentKey, service: DesiredService, replica: int) -> str:
    return docker_name(f"ry-{key.slug}-{service.name}-{service.spec_hash[:8]}-{replica}")


def volume_name(key: EnvironmentKey, volume: str) -> str:
    return docker_name(f"{key.slug}-{volume}")


def container_labels(
    key: EnvironmentKey, service: DesiredService, revision: str, replica: int
) -> dict[str, str]:
    return key.labels() | {
        labels.SERVICE: service.name,
        labels.REVISION: revision,
        labels.SPEC_HASH: service.spec_hash,
        labels.REPLICA: str(replica),
    }


def container_options(
    key: EnvironmentKey, service: DesiredService, revision: str, replica: int
) -> dict[str, Any]:
    """The keyword arguments of ``containers.create`` for one replica (commands as data)."""
    resources = service.resources
    options: dict[str, Any] = {
        "name": container_name(key, service, replica),
        "labels": container_labels(key, service, revision, replica),
        "environment": dict(service.env),
        "detach": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "init": True,
        "restart_policy": {"Name": "no"},
        "mem_limit": resources.memory_bytes or DEFAULT_MEMORY_BYTES,
        "pids_limit": resources.pids or DEFAULT_PIDS,
        "log_config": LogConfig(type="json-file", config={"max-size": "10m", "max-file": "3"}),
        "volumes": {
            volume_name(key, name): {"bind": path, "mode": "rw"} for name, path in service.volumes
        },
    }
    if resources.cpus:
        options["nano_cpus"] = int(resources.cpus * 1_000_000_000)
    if service.port is not None:
        options["ports"] = {f"{service.port}/tcp": ("127.0.0.1", None)}
    if service.command is not None:
        options["command"] = list(service.command)
    if service.entrypoint is not None:
        options["entrypoint"] = list(service.entrypoint)
    return options


def observe(container: Any) -> ObservedContainer:
    """Map an SDK container (inspected, so ``attrs`` is complete) to what the planner sees."""
    attrs: dict[str, Any] = container.attrs
    own = (attrs.get("Config") or {}).get("Labels") or {}
    replica = own.get(labels.REPLICA, "")
    return ObservedContainer(
        id=container.id,
        name=str(attrs.get("Name", "")).lstrip("/"),
        service=own.get(labels.SERVICE, ""),
        spec_hash=own.get(labels.SPEC_HASH, ""),
        revision=own.get(labels.REVISION, ""),
        replica=int(replica) if replica.isdigit() else -1,
        state=container.status,
        host_port=_host_port((attrs.get("NetworkSettings") or {}).get("Ports") or {}),
        environment=_environment(own),
    )


def _environment(own: dict[str, str]) -> EnvironmentKey | None:
    parts = (own.get(labels.TENANT), own.get(labels.APP), own.get(labels.ENV))
    if not all(parts):
        return None
    tenant, app, env = (str(part) for part in parts)
    return EnvironmentKey(tenant, app, env, own.get(labels.INSTANCE, ""))


def task_options(
    key: EnvironmentKey, service: DesiredService, command: tuple[str, ...], revision: str
) -> dict[str, Any]:
    """A one-off container of the service: same image, env and limits; no port; a spec-hash
    label that never matches a service, so it can never be taken for a replica."""
    options = container_options(key, service, revision, 0)
    options.pop("ports", None)
    options["name"] = docker_name(f"ry-{key.slug}-{service.name}-{service.spec_hash[:8]}-release")
    options["labels"] = options["labels"] | {labels.SPEC_HASH: "task", labels.REPLICA: "-1"}
    options["command"] = list(command)
    return options


def _host_port(ports: dict[str, list[dict[str, str]] | None]) -> int | None:
    for bindings in ports.values():
        for binding in bindings or []:
            if binding.get("HostPort"):
                return int(binding["HostPort"])
    return None


class DockerRuntime:
    """Runs each environment's replicas as labelled containers on one Docker engine."""

    def __init__(self, client_factory: Callable[[], docker.DockerClient] | None = None) -> None:
        self._client_factory = client_factory or docker.from_env
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()

    def _docker(self) -> docker.DockerClient:
        """The SDK client, created on first use (from_env asks the engine for its API version)."""
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    async def _run(self, what: str, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except docker.errors.APIError as exc:
            raise RuntimeUnavailable(
                f"Docker engine failed to {what}: {exc.explanation or exc}"
            ) from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise RuntimeUnavailable(f"Docker engine unreachable: {exc}") from exc

    async def list_containers(self, key: EnvironmentKey | None = None) -> list[ObservedContainer]:
        wanted = key.labels() if key is not None else {labels.MANAGED: "true"}
        filters = {"label": [f"{name}={value}" for name, value in wanted.items()]}

        def list_sync() -> list[ObservedContainer]:
            found = self._docker().containers.list(all=True, filters=filters, ignore_removed=True)
            return [observe(container) for container in found]

        observed = await self._run("list containers", list_sync)
        return sorted(observed, key=lambda c: (c.service, c.replica, c.name))

    async def image_exists(self, image: str) -> bool:
        def exists_sync() -> bool:
            try:
                self._docker().images.get(image)
            except docker.errors.ImageNotFound:
                return False
            return True

        return await self._run(f"inspect image {image}", exists_sync)

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
        async with aclosing(self._stream(f"build {image}", start_sync)) as chunks:
            async for chunk in chunks:
                for line in _stream_lines(chunk):
                    tail.append(line)
                    on_log(line)
                error = _stream_error(chunk)
                if error is not None:
                    if not tail or tail[-1] != error:
                        tail.append(error)
                    log_tail = "\n".join(tail)
                    raise BuildError(f"building {image} failed: {error}", log_tail=log_tail)

    async def pull_image(self, image: str, on_log: BuildLog) -> None:
        def start_sync() -> Iterator[dict[str, Any]]:
            return iter(self._docker().api.pull(image, stream=True, decode=True))

        async with aclosing(self._stream(f"pull {image}", start_sync)) as chunks:
            async for chunk in chunks:
                error = _stream_error(chunk)
                if error is not None:
                    raise RuntimeUnavailable(f"pulling {image} failed: {error}")
                if "progress" not in chunk:
                    for line in _stream_lines(chunk):
                        on_log(line)

    async def _stream(
        self, what: str, start: Callable[[], Iterator[dict[str, Any]]]
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The engine's JSON progress stream, one chunk per thread hop so that the
        caller's log callback runs on the event loop. The engine refusing the request
        (its status is only checked once the stream is read) ends the stream with an
        error chunk, like a failure reported inside the stream."""

        def open_sync() -> Iterator[dict[str, Any]]:
            try:
                return start()
            except docker.errors.APIError as exc:
                return iter([_refusal(exc)])

        def next_sync(stream: Iterator[dict[str, Any]]) -> dict[str, Any] | None:
            try:
                return next(stream, None)
            except docker.errors.APIError as exc:
                return _refusal(exc)

        stream = await self._run(what, open_sync)
        while (chunk := await self._run(what, partial(next_sync, stream))) is not None:
            yield chunk

    async def start_container(
        self, key: EnvironmentKey, service: DesiredService, revision: str, replica: int
    ) -> ObservedContainer:
        options = container_options(key, service, revision, replica)

        def start_sync() -> ObservedContainer:
            client = self._docker()
            _remove_named(client, options["name"])
            for name in options["volumes"]:
                client.volumes.create(name=name, labels=key.labels())
            try:
                container = client.containers.create(service.image, **options)
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

        return await self._run(f"start {options['name']}", start_sync)

    async def run_task(
        self,
        key: EnvironmentKey,
        service: DesiredService,
        command: tuple[str, ...],
        revision: str,
        *,
        timeout: float,
    ) -> TaskResult:
        options = task_options(key, service, command, revision)

        def run_sync() -> TaskResult:
            client = self._docker()
            _remove_named(client, options["name"])
            try:
                container = client.containers.create(service.image, **options)
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
                return TaskResult(exit_code, text)
            finally:
                _remove_named(client, container.id)

        return await self._run(f"run task {options['name']}", run_sync)

    async def remove_container(self, container_id: str, *, stop_timeout: float = 10.0) -> None:
        def remove_sync() -> None:
            try:
                container = self._docker().containers.get(container_id)
                if container.status in ("running", "restarting", "paused"):
                    container.stop(timeout=math.ceil(stop_timeout))
                container.remove(force=True)
            except docker.errors.NotFound:
                return

        await self._run(f"remove container {container_id}", remove_sync)

    async def container_logs(self, container_id: str, *, tail: int = 50) -> str:
        def logs_sync() -> str:
            try:
                container = self._docker().containers.get(container_id)
            except docker.errors.NotFound as exc:
                raise NotFoundError(f"container {container_id} not found") from exc
            output: bytes = container.logs(stdout=True, stderr=True, tail=tail)
            return output.decode("utf-8", errors="replace")

        return await self._run(f"read logs of {container_id}", logs_sync)

    async def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            await self._run("close the client", client.close)


def _remove_named(client: Any, name_or_id: str) -> None:
    """Force-remove a container (a leftover from a crash, or a failed start) if it exists."""
    try:
        client.containers.get(name_or_id).remove(force=True)
    except docker.errors.NotFound:
        return


def _refusal(exc: Any) -> dict[str, Any]:
    return {"error": str(exc.explanation or exc)}


def _stream_lines(chunk: dict[str, Any]) -> list[str]:
    text = chunk.get("stream") or chunk.get("status") or ""
    return [line.rstrip() for line in str(text).splitlines() if line.strip()]


def _stream_error(chunk: dict[str, Any]) -> str | None:
    detail = chunk.get("errorDetail") or {}
    message = detail.get("message") or chunk.get("error")
    return str(message).strip() if message else None
