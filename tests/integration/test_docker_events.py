"""DockerRuntime.watch_exits against the real engine: a killed replica is heard within
seconds, a release task is not, closing the watch leaves no thread, and an engine that
cannot be reached raises RuntimeUnavailable.

Other tests may run on the same engine at the same time, so each test only looks at the
exits of its own tenant's environment.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from contextlib import aclosing

import docker
import pytest

from controller.errors import RuntimeUnavailable
from controller.runtime.base import ContainerExit
from controller.runtime.docker import DockerRuntime
from controller.runtime.docker_events import WATCH_THREAD
from controller.state import DesiredService, EnvironmentKey
from tests.support import async_wait_until

pytestmark = pytest.mark.docker

SLEEPER = DesiredService(name="web", image="busybox:stable", command=("sleep", "600"))


def watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WATCH_THREAD and t.is_alive()]


async def first_exit_of(
    exits: AsyncGenerator[ContainerExit, None], key: EnvironmentKey
) -> ContainerExit:
    async for found in exits:
        if found.environment == key:
            return found
    raise AssertionError("the watch ended before an exit of the environment")


async def test_a_killed_replica_is_heard_and_a_release_task_is_not(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    replica = await runtime.start_container(key, SLEEPER, "c0ffee", 0)
    threads_before = len(watch_threads())

    async with asyncio.timeout(20), aclosing(runtime.watch_exits()) as exits:
        heard = asyncio.create_task(first_exit_of(exits, key))

        async def reading() -> bool:
            return len(watch_threads()) > threads_before

        await async_wait_until(reading, timeout=10, what="the watch to start reading")
        # A release task's container exits and is removed: an exit, but not a replica's.
        task = await runtime.run_task(key, SLEEPER, ("true",), "c0ffee", timeout=10)
        assert task.exit_code == 0
        await asyncio.to_thread(engine.containers.get(replica.id).kill)
        found = await heard

    assert found == ContainerExit(key, replica.name, "die")
    assert len(watch_threads()) == threads_before, "closing the watch ended its thread"


async def test_an_unreachable_engine_raises_runtime_unavailable() -> None:
    unreachable = DockerRuntime(lambda: docker.DockerClient(base_url="unix:///nonexistent.sock"))
    async with asyncio.timeout(10), aclosing(unreachable.watch_exits()) as exits:
        with pytest.raises(RuntimeUnavailable, match="Docker engine unreachable"):
            await anext(exits)
