"""The fake runtime behaves like Docker where the executor and reconciler can tell."""

from __future__ import annotations

import asyncio
import inspect
from contextlib import aclosing
from dataclasses import replace

import pytest

from controller.errors import BuildError, NotFoundError, RuntimeUnavailable
from controller.runtime.base import ContainerExit, Runtime
from controller.runtime.docker import DockerRuntime
from controller.runtime.fake import FakeRuntime
from controller.state import BuildSource, DesiredService, EnvironmentKey
from tests.support import async_wait_until

PROD = EnvironmentKey("acme", "shop", "production")
PREVIEW = EnvironmentKey("acme", "shop", "pr-7")
WEB = DesiredService(name="web", image="railyard/acme-shop-web:abc", port=8080)


@pytest.mark.parametrize("adapter", [FakeRuntime, DockerRuntime])
@pytest.mark.parametrize("method", sorted(m for m in vars(Runtime) if not m.startswith("_")))
def test_adapters_have_the_runtime_signatures(adapter: type, method: str) -> None:
    ours, port = getattr(adapter, method), getattr(Runtime, method)

    if inspect.iscoroutinefunction(port):
        assert inspect.iscoroutinefunction(ours)
    else:  # follow_logs: a plain method in the port, an async generator in adapters
        assert inspect.isasyncgenfunction(ours)
    assert inspect.signature(ours) == inspect.signature(port)


async def test_started_replicas_are_listed_per_environment_with_distinct_ports() -> None:
    runtime = FakeRuntime(images={WEB.image})
    first = await runtime.start_container(PROD, WEB, "c0ffee", 0)
    second = await runtime.start_container(PROD, WEB, "c0ffee", 1)
    await runtime.start_container(PREVIEW, WEB, "beef", 0)

    listed = await runtime.list_containers(PROD)

    assert listed == [first, second]
    assert {c.spec_hash for c in listed} == {WEB.spec_hash}
    assert first.running and first.address and first.host_port != second.host_port
    assert len(await runtime.list_containers()) == 3


async def test_start_replaces_a_leftover_of_the_same_name() -> None:
    runtime = FakeRuntime(images={WEB.image})
    old = await runtime.start_container(PROD, WEB, "c0ffee", 0)
    runtime.kill(old.id)

    new = await runtime.start_container(PROD, WEB, "c0ffee", 0)

    assert await runtime.list_containers(PROD) == [new]
    assert new.name == old.name and new.id != old.id


async def test_start_needs_the_image_and_build_provides_it() -> None:
    runtime = FakeRuntime()
    with pytest.raises(RuntimeUnavailable, match="not in the Docker engine"):
        await runtime.start_container(PROD, WEB, "c0ffee", 0)

    lines: list[str] = []
    await runtime.build_image(WEB.image, b"", BuildSource(), lines.append)

    assert await runtime.image_exists(WEB.image)
    assert runtime.built == [WEB.image] and lines
    assert (await runtime.start_container(PROD, WEB, "c0ffee", 0)).running


async def test_injected_failures() -> None:
    runtime = FakeRuntime(images={WEB.image})
    runtime.fail_build.add("broken:1")
    runtime.fail_pull.add("missing:1")
    runtime.fail_start.add("web")

    with pytest.raises(BuildError) as build_failure:
        await runtime.build_image("broken:1", b"", BuildSource(), lambda _: None)
    with pytest.raises(RuntimeUnavailable, match="missing:1"):
        await runtime.pull_image("missing:1", lambda _: None)
    with pytest.raises(RuntimeUnavailable, match="injected"):
        await runtime.start_container(PROD, WEB, "c0ffee", 0)

    assert build_failure.value.log_tail
    assert not await runtime.image_exists("broken:1")
    assert await runtime.list_containers() == []


async def test_crashing_app_starts_exited_without_a_port() -> None:
    runtime = FakeRuntime(images={WEB.image})
    runtime.exit_on_start.add("web")

    container = await runtime.start_container(PROD, WEB, "c0ffee", 0)

    assert container.state == "exited" and container.address is None


async def test_kill_marks_the_container_exited() -> None:
    runtime = FakeRuntime(images={WEB.image})
    container = await runtime.start_container(PROD, WEB, "c0ffee", 0)

    runtime.kill(container.id)

    [observed] = await runtime.list_containers(PROD)
    assert observed.id == container.id and not observed.running


async def test_remove_is_idempotent_and_operations_keep_the_order() -> None:
    runtime = FakeRuntime(images={WEB.image})
    old = await runtime.start_container(PROD, WEB, "old", 0)
    new_web = DesiredService(name="web", image=WEB.image, port=8080, env=(("V", "2"),))
    new = await runtime.start_container(PROD, new_web, "new", 0)

    await runtime.remove_container(old.id)
    await runtime.remove_container(old.id)

    assert await runtime.list_containers(PROD) == [new]
    assert runtime.operations == [f"start {old.name}", f"start {new.name}", f"remove {old.name}"]


async def test_logs_are_tailed_and_missing_containers_are_not_found() -> None:
    runtime = FakeRuntime(images={WEB.image})
    container = await runtime.start_container(PROD, WEB, "c0ffee", 0)
    runtime.logs[container.id] = "one\ntwo\nthree\n"

    assert await runtime.container_logs(container.id, tail=2) == "two\nthree\n"
    with pytest.raises(NotFoundError):
        await runtime.container_logs("nope")


async def test_an_unavailable_engine_fails_every_call() -> None:
    runtime = FakeRuntime()
    runtime.unavailable = True

    with pytest.raises(RuntimeUnavailable, match="unreachable"):
        await runtime.list_containers()


async def test_environments_get_one_network_each_until_their_resources_are_removed() -> None:
    runtime = FakeRuntime(images={WEB.image})
    web = await runtime.start_container(PROD, WEB, "c0ffee", 0)
    await runtime.start_container(PROD, WEB, "c0ffee", 1)
    await runtime.run_task(PREVIEW, WEB, ("migrate",), "beef", timeout=5)
    kept = await runtime.start_container(PREVIEW, WEB, "beef", 0)
    assert set(await runtime.list_networks()) == {PROD, PREVIEW}

    await runtime.remove_environment_resources(PROD)
    await runtime.remove_environment_resources(PROD)

    assert await runtime.list_containers(PROD) == []
    assert await runtime.list_containers(PREVIEW) == [kept]
    assert await runtime.list_networks() == [PREVIEW]
    assert runtime.operations[-3:] == [
        f"remove {web.name}",
        f"remove {web.name[:-1]}1",
        f"remove network ry-{PROD.slug}",
    ]


async def test_prune_images_removes_unused_unlisted_images_of_the_prefix_only() -> None:
    repo = "railyard/acme-shop-web"
    old, kept, used = f"{repo}:old", f"{repo}:kept", f"{repo}:used"
    other_app, foreign = "railyard/acme-shopping-web:old", "busybox:stable"
    runtime = FakeRuntime(images={old, kept, used, other_app, foreign})
    await runtime.start_container(PROD, DesiredService(name="web", image=used), "c0ffee", 0)

    removed = await runtime.prune_images("acme-shop-", keep=[kept])

    assert removed == [old]
    assert runtime.images == {kept, used, other_app, foreign}
    assert runtime.operations[-1] == f"remove image {old}"
    assert await runtime.prune_images("acme-shop-", keep=[kept]) == []


async def test_follow_logs_yields_the_tail_then_new_lines_until_the_container_stops() -> None:
    runtime = FakeRuntime(images={WEB.image})
    container = await runtime.start_container(PROD, WEB, "c0ffee", 0)
    runtime.logs[container.id] = "one\ntwo\nthree\n"

    async with asyncio.timeout(5), aclosing(runtime.follow_logs(container.id, tail=2)) as lines:
        assert [await anext(lines), await anext(lines)] == ["two", "three"]
        runtime.logs[container.id] += "four\n"
        assert await anext(lines) == "four"
        runtime.logs[container.id] += "five\n"
        runtime.kill(container.id)
        assert [line async for line in lines] == ["five"]

    with pytest.raises(NotFoundError):
        await anext(runtime.follow_logs("nope"))


async def test_watchers_hear_replicas_that_die_or_go_until_the_engine_goes_away() -> None:
    runtime = FakeRuntime(images={WEB.image})
    runtime.exit_on_start.add("crashy")
    killed = await runtime.start_container(PROD, WEB, "c0ffee", 0)
    removed = await runtime.start_container(PREVIEW, WEB, "c0ffee", 0)

    async with asyncio.timeout(5), aclosing(runtime.watch_exits()) as exits:
        first = asyncio.create_task(anext(exits))
        await async_wait_until(lambda: _is(runtime.watching == 1), timeout=5, what="watching")
        runtime.kill(killed.id)
        await runtime.remove_container(removed.id)
        crashy = replace(WEB, name="crashy")
        crashed = await runtime.start_container(PROD, crashy, "c0ffee", 0)
        await runtime.run_task(PROD, WEB, ("migrate",), "c0ffee", timeout=5)
        heard = [await first, await anext(exits), await anext(exits)]
        runtime.end_watches()
        with pytest.raises(RuntimeUnavailable):
            await anext(exits)

    assert heard == [
        ContainerExit(PROD, killed.name, "die"),
        ContainerExit(PREVIEW, removed.name, "destroy"),
        ContainerExit(PROD, crashed.name, "die"),
    ]
    assert runtime.watching == 0


async def _is(value: bool) -> bool:
    return value
