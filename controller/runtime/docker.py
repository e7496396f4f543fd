"""The Runtime port on a local Docker engine, through the docker SDK.

This is one of the two modules that import ``docker``. Every SDK call blocks, so
each runs in a worker thread; every foreign exception is mapped here:

    docker.errors.ImageNotFound on start   -> RuntimeUnavailable naming the image
    docker.errors.NotFound on logs         -> NotFoundError
    docker.errors.APIError during build    -> BuildError (with the engine's reason)
    docker.errors.APIError                 -> RuntimeUnavailable (with the explanation)
    DockerException, OSError (requests)    -> RuntimeUnavailable("Docker engine unreachable: ...")

Containers are hardened by default (no capabilities, no-new-privileges, an init
process, memory and pids limits, no host mounts) and never restarted by Docker:
repairing is the reconciler's job, so that every repair is observed and recorded.

Each environment gets one labelled bridge network, ``ry-<slug>``; a replica joins it
under its service's name, so ``http://<service>:<port>`` reaches the service from
inside the environment and from nowhere else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import math
import re
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from contextlib import aclosing
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import docker
import docker.errors
from docker.types import LogConfig

from controller import labels
from controller.errors import BuildError, NotFoundError, RailyardError, RuntimeUnavailable
from controller.runtime.base import BuildLog, TaskResult
from controller.state import BuildSource, DesiredService, EnvironmentKey, ObservedContainer

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024
DEFAULT_PIDS = 512
BUILD_LOG_TAIL_LINES = 20
IMAGE_REPOSITORY = "railyard/"
"""Where ``image_for`` puts every image Railyard builds; pruning never looks elsewhere."""
FOLLOW_BUFFER_LINES = 1000
"""Lines a log follower holds for a slow reader before its thread waits."""
FOLLOW_POLL_SECONDS = 0.2
FOLLOW_JOIN_SECONDS = 5.0
_NAME_FORBIDDEN = re.compile(r"[^a-zA-Z0-9_.-]")


def docker_name(raw: str) -> str:
    """``raw`` with every character Docker refuses in a container/volume name replaced."""
    return _NAME_FORBIDDEN.sub("-", raw)


def container_name(key: EnvironmentKey, service: DesiredService, replica: int) -> str:
    return docker_name(f"ry-{key.slug}-{service.name}-{service.spec_hash[:8]}-{replica}")


def volume_name(key: EnvironmentKey, volume: str) -> str:
    return docker_name(f"{key.slug}-{volume}")


def network_name(key: EnvironmentKey) -> str:
    return docker_name(f"ry-{key.slug}")


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
        state=_state(attrs, container.status),
        host_port=_host_port((attrs.get("NetworkSettings") or {}).get("Ports") or {}),
        environment=_environment(own),
    )


def _state(attrs: dict[str, Any], status: str) -> str:
    """Docker's status, except that a running container whose image's HEALTHCHECK
    fails is ``unhealthy``: the planner replaces it like a stopped one."""
    health = ((attrs.get("State") or {}).get("Health") or {}).get("Status")
    return "unhealthy" if status == "running" and health == "unhealthy" else status


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
        self._network_locks: dict[str, threading.Lock] = {}

    def _docker(self) -> docker.DockerClient:
        """The SDK client, created on first use (from_env asks the engine for its API version)."""
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    async def _run(self, what: str, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except (docker.errors.DockerException, OSError) as exc:
            raise _engine_error(what, exc) from exc

    async def list_containers(self, key: EnvironmentKey | None = None) -> list[ObservedContainer]:
        wanted = key.labels() if key is not None else {labels.MANAGED: "true"}
        filters = _label_filters(wanted)

        def list_sync() -> list[ObservedContainer]:
            found = self._docker().containers.list(all=True, filters=filters, ignore_removed=True)
            observed = [observe(container) for container in found]
            # The label filter cannot say "no instance label": match the key exactly.
            return [c for c in observed if key is None or c.environment == key]

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
            network = self._ensure_network(client, key)
            joined = options | _network_options(client, network, alias=service.name)
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
            network = self._ensure_network(client, key)
            joined = options | _network_options(client, network, alias=None)
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

        follower = _LogFollower(open_sync, f"follow logs of {container_id}")
        follower.start()
        try:
            while not isinstance(item := await follower.queue.get(), _Ended):
                yield item
            if item.error is not None:
                raise item.error
        finally:
            await follower.stop()

    def _ensure_network(self, client: docker.DockerClient, key: EnvironmentKey) -> str:
        """The id of the environment's network, created if missing.

        The engine does not keep network names unique under concurrent creates (20.10
        makes two), so creates are serialised per name in this process; across
        processes (best effort) the oldest network of the name wins and a loser removes
        its own. A new network adopts the environment's running replicas: those started
        before environments had networks are reachable by name without a restart."""
        name = network_name(key)
        with self._client_lock:
            lock = self._network_locks.setdefault(name, threading.Lock())
        with lock:
            existing = _networks_of(client, key, name)
            if existing:
                return str(existing[0]["Id"])
            created: dict[str, Any] | None = None
            try:
                created = client.api.create_network(
                    name, driver="bridge", labels=key.labels(), check_duplicate=True
                )
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: another process created it since we looked
                    raise
            existing = _networks_of(client, key, name)
            if not existing:
                raise RuntimeUnavailable(f"network {name} vanished as it was created")
            winner = str(existing[0]["Id"])
            if created is not None and created.get("Id") != winner:
                _discard_network(client, str(created["Id"]))
            elif created is not None:
                _adopt_replicas(client, key, winner)
            return winner

    async def remove_environment_resources(self, key: EnvironmentKey) -> None:
        def remove_sync() -> None:
            client = self._docker()
            for container in client.api.containers(all=True, filters=_label_filters(key.labels())):
                if _environment(container.get("Labels") or {}) == key:
                    _remove_named(client, str(container["Id"]))
            for network in _networks_of(client, key):
                _remove_network(client, str(network["Id"]))

        await self._run(f"remove the resources of {key}", remove_sync)

    async def list_networks(self) -> list[EnvironmentKey]:
        def list_sync() -> list[EnvironmentKey]:
            found = self._docker().api.networks(filters=_label_filters({labels.MANAGED: "true"}))
            return [
                owner
                for network in found
                if (owner := _environment(network.get("Labels") or {})) is not None
            ]

        keys = set(await self._run("list networks", list_sync))
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

        return await self._run(f"prune images {prefix}*", prune_sync)

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


def _engine_error(what: str, exc: Exception) -> RuntimeUnavailable:
    if isinstance(exc, docker.errors.APIError):
        return RuntimeUnavailable(f"Docker engine failed to {what}: {exc.explanation or exc}")
    return RuntimeUnavailable(f"Docker engine unreachable: {exc}")


def _label_filters(wanted: dict[str, str]) -> dict[str, list[str]]:
    return {"label": [f"{name}={value}" for name, value in wanted.items()]}


def _network_options(client: Any, network_id: str, *, alias: str | None) -> dict[str, Any]:
    """Join only the environment's network (by id: a name may briefly be ambiguous)."""
    aliases = [alias] if alias is not None else None
    endpoint = client.api.create_endpoint_config(aliases=aliases)
    return {"network": network_id, "networking_config": {network_id: endpoint}}


def _networks_of(client: Any, key: EnvironmentKey, name: str | None = None) -> list[Any]:
    """The environment's networks (of that name, if given), oldest first."""
    found = client.api.networks(filters=_label_filters(key.labels()))
    own = [
        network
        for network in found
        if _environment(network.get("Labels") or {}) == key
        and (name is None or network.get("Name") == name)
    ]
    return sorted(own, key=lambda network: (_created(network), network.get("Id", "")))


def _created(network: dict[str, Any]) -> datetime:
    try:
        created = datetime.fromisoformat(str(network.get("Created", "")))
    except ValueError:
        created = datetime.max
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def _remove_network(client: Any, network_id: str) -> None:
    try:
        client.api.remove_network(network_id)
    except docker.errors.NotFound:
        return


def _discard_network(client: Any, network_id: str) -> None:
    """Remove a duplicate we created in a race; if someone joined it already, keep it."""
    try:
        _remove_network(client, network_id)
    except docker.errors.APIError as exc:
        log.warning("kept duplicate network %s: %s", network_id, exc.explanation or exc)


def _adopt_replicas(client: Any, key: EnvironmentKey, network_id: str) -> None:
    for container in client.api.containers(filters=_label_filters(key.labels())):
        own = container.get("Labels") or {}
        attached = (container.get("NetworkSettings") or {}).get("Networks") or {}
        if _environment(own) != key or own.get(labels.SPEC_HASH) == "task":
            continue
        if any(net.get("NetworkID") == network_id for net in attached.values()):
            continue
        try:
            client.api.connect_container_to_network(
                container["Id"], network_id, aliases=[own.get(labels.SERVICE, "")]
            )
        except docker.errors.NotFound:
            continue


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


def _refusal(exc: Any) -> dict[str, Any]:
    return {"error": str(exc.explanation or exc)}


def _stream_lines(chunk: dict[str, Any]) -> list[str]:
    text = chunk.get("stream") or chunk.get("status") or ""
    return [line.rstrip() for line in str(text).splitlines() if line.strip()]


def _stream_error(chunk: dict[str, Any]) -> str | None:
    detail = chunk.get("errorDetail") or {}
    message = detail.get("message") or chunk.get("error")
    return str(message).strip() if message else None


class _Ended:
    """The follower thread's last word: the stream ended, normally or with ``error``."""

    def __init__(self, error: RailyardError | None) -> None:
        self.error = error


class _LogFollower:
    """Reads a log stream in a thread and hands its lines to the event loop.

    The queue is bounded, so a slow reader makes the thread wait instead of filling
    memory. ``stop`` closes the stream (which ends the thread's blocking read), frees
    a hand-over the thread may be waiting in, and joins the thread.
    """

    def __init__(self, open_stream: Callable[[], Iterator[bytes]], what: str) -> None:
        self._open = open_stream
        self._what = what
        self._loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[str | _Ended] = asyncio.Queue(FOLLOW_BUFFER_LINES)
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._pump, name=what, daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        self._stopping.set()
        self._close_stream()
        while not self.queue.empty():
            self.queue.get_nowait()
        await asyncio.to_thread(self._thread.join, FOLLOW_JOIN_SECONDS)
        if self._thread.is_alive():
            log.warning(
                "%s: reader thread still blocked after %gs", self._what, FOLLOW_JOIN_SECONDS
            )

    def _pump(self) -> None:
        error: RailyardError | None = None
        try:
            self._pump_lines()
        except RailyardError as exc:
            error = exc
        finally:
            self._close_stream()
            self._hand_over(_Ended(error))

    def _pump_lines(self) -> None:
        try:
            stream = self._open()
            with self._guard:
                self._stream = stream
            if self._stopping.is_set():
                return
            for line in _log_lines(stream):
                if not self._hand_over(line):
                    return
        except (docker.errors.DockerException, OSError) as exc:
            raise _engine_error(self._what, exc) from exc

    def _hand_over(self, item: str | _Ended) -> bool:
        """Put ``item`` on the queue, waiting while it is full; False once stopping."""
        put = self.queue.put(item)
        try:
            handed = asyncio.run_coroutine_threadsafe(put, self._loop)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            put.close()
            return False
        while not self._stopping.is_set():
            try:
                handed.result(timeout=FOLLOW_POLL_SECONDS)
            except concurrent.futures.TimeoutError:
                continue
            except concurrent.futures.CancelledError:
                return False
            return True
        handed.cancel()
        return False

    def _close_stream(self) -> None:
        with self._guard:
            stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.close()
        except (docker.errors.DockerException, OSError) as exc:
            log.debug("closing %s: %s", self._what, exc)


def _log_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", errors="replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", errors="replace")
