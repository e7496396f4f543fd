"""``capabilities:`` against the real engine: a container has every capability dropped,
and gets back exactly the ones its manifest asks for, in replicas and release tasks alike.

Every test owns a unique tenant; the fixture removes every container and network
carrying it, whatever the test did.
"""

from __future__ import annotations

import json

import docker
import pytest

from controller.runtime.docker import DockerRuntime
from controller.spec import RenderContext, parse_manifest, render_environment
from controller.state import DesiredService, EnvironmentKey
from tests.support import async_wait_until

pytestmark = pytest.mark.docker

BUSYBOX = "busybox:stable"
# The stand-in busybox image has no /tmp; root may create it (it owns /) without
# any capability, but giving a file away to another user takes CAP_CHOWN.
CHOWN_SCRIPT = (
    "mkdir -p /tmp && touch /tmp/owned && chown 1:1 /tmp/owned && stat -c %u:%g /tmp/owned"
)


def rendered(key: EnvironmentKey, capabilities: str, command: str | None = None) -> DesiredService:
    """Service ``job`` of a manifest whose ``capabilities:`` is written ``capabilities``."""
    text = (
        f"version: 1\nservices:\n  job:\n    image: {BUSYBOX}\n    capabilities: {capabilities}\n"
    )
    if command is not None:
        text += f"    command: {json.dumps(['sh', '-c', command])}\n"
    manifest = parse_manifest(text)
    desired = render_environment(manifest, RenderContext(key, "c0ffee"))
    service = desired.service("job")
    assert service is not None
    return service


async def test_a_release_task_without_capabilities_cannot_give_a_file_away(
    runtime: DockerRuntime, key: EnvironmentKey
) -> None:
    service = rendered(key, "[]")

    result = await runtime.run_task(key, service, ("sh", "-c", CHOWN_SCRIPT), "c0ffee", timeout=30)

    assert result.exit_code != 0
    assert "Operation not permitted" in result.output


async def test_a_release_task_with_chown_can_give_a_file_away(
    runtime: DockerRuntime, key: EnvironmentKey
) -> None:
    service = rendered(key, "[cap_chown]")
    assert service.capabilities == ("CHOWN",)

    result = await runtime.run_task(key, service, ("sh", "-c", CHOWN_SCRIPT), "c0ffee", timeout=30)

    assert (result.exit_code, result.output.strip()) == (0, "1:1")


async def test_a_replica_gets_back_only_the_capabilities_it_asks_for(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    script = f"{CHOWN_SCRIPT} && echo chowned; exec sleep 60"
    service = rendered(key, "[NET_BIND_SERVICE, CAP_CHOWN, chown]", script)

    started = await runtime.start_container(key, service, "c0ffee", 0)

    host = engine.api.inspect_container(started.id)["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert host["CapAdd"] == ["CHOWN", "NET_BIND_SERVICE"]
    assert host["SecurityOpt"] == ["no-new-privileges"]

    async def chowned() -> bool:
        return "chowned" in await runtime.container_logs(started.id, tail=5)

    await async_wait_until(chowned, timeout=10, what="the replica to chown its file")
