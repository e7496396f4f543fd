"""What the Docker adapter asks the engine for, as data: names, labels and the keyword
arguments of ``containers.create``, and how an inspected container reads back.

Kept apart from the calls that send them (kamal's "commands as data") so that tests can
assert the exact options a replica or a task gets, without an engine.

Containers are hardened by default (every capability dropped but the few the manifest
adds back from an allow-list, no-new-privileges, an init process, memory and pids
limits, no host mounts) and never restarted by Docker: repairing is the reconciler's
job, so that every repair is observed and recorded.
"""

from __future__ import annotations

import re
from typing import Any

from docker.types import LogConfig

from controller import labels
from controller.state import DesiredService, EnvironmentKey, ObservedContainer

DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024
DEFAULT_PIDS = 512
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


def label_filters(wanted: dict[str, str]) -> dict[str, list[str]]:
    """The engine's ``filters`` argument matching every label in ``wanted``."""
    return {"label": [f"{name}={value}" for name, value in wanted.items()]}


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
        "cap_add": list(service.capabilities),
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
    if service.read_only:
        options["read_only"] = True
        # Paths inside the container, in memory: not host temporary files.
        options["tmpfs"] = {"/tmp": "rw,nosuid,nodev,size=64m", "/run": "rw,nosuid,nodev,size=16m"}  # noqa: S108
    if resources.cpus:
        options["nano_cpus"] = int(resources.cpus * 1_000_000_000)
    if service.port is not None:
        options["ports"] = {f"{service.port}/tcp": ("127.0.0.1", None)}
    if service.command is not None:
        options["command"] = list(service.command)
    if service.entrypoint is not None:
        options["entrypoint"] = list(service.entrypoint)
    return options


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
        environment=environment_of(own),
    )


def environment_of(own: dict[str, str]) -> EnvironmentKey | None:
    """The environment a container or network belongs to, read back from its labels."""
    parts = (own.get(labels.TENANT), own.get(labels.APP), own.get(labels.ENV))
    if not all(parts):
        return None
    tenant, app, env = (str(part) for part in parts)
    return EnvironmentKey(tenant, app, env, own.get(labels.INSTANCE, ""))


def _state(attrs: dict[str, Any], status: str) -> str:
    """Docker's status, except that a running container whose image's HEALTHCHECK
    fails is ``unhealthy``: the planner replaces it like a stopped one."""
    health = ((attrs.get("State") or {}).get("Health") or {}).get("Status")
    return "unhealthy" if status == "running" and health == "unhealthy" else status


def _host_port(ports: dict[str, list[dict[str, str]] | None]) -> int | None:
    for bindings in ports.values():
        for binding in bindings or []:
            if binding.get("HostPort"):
                return int(binding["HostPort"])
    return None
