"""DockerRuntime against the real engine: build, run, observe, replace, remove, harden,
environment networks, image pruning, log following and Docker health.

Every test owns a unique tenant; the fixture removes every container, network,
volume and image carrying it, whatever the test did.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import threading
from contextlib import aclosing
from functools import partial

import docker
import docker.errors
import httpx
import pytest

from controller import labels
from controller.errors import BuildError, NotFoundError, RuntimeUnavailable
from controller.runtime.docker import DockerRuntime, network_name
from controller.state import BuildSource, DesiredService, EnvironmentKey, Resources
from tests.support import async_wait_until

pytestmark = pytest.mark.docker

SERVE_DOCKERFILE = b"""FROM busybox:stable
COPY index.html /www/index.html
EXPOSE 8080
CMD ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
"""


def context_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def build_site(runtime: DockerRuntime, key: EnvironmentKey) -> str:
    """Build an image serving a page that names the tenant; returns its tag."""
    image = f"railyard/{key.tenant}-shop-web:1"
    files = {"Dockerfile": SERVE_DOCKERFILE, "index.html": f"hello {key.tenant}\n".encode()}
    lines: list[str] = []
    await runtime.build_image(image, context_tar(files), BuildSource(), lines.append)
    assert any(line.startswith("Step 2/") and "COPY" in line for line in lines)
    return image


async def answers(address: str, body: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1.0) as http:
            response = await http.get(f"http://{address}/index.html")
    except httpx.TransportError:
        return False
    return response.status_code == 200 and response.text == body


async def test_build_start_two_replicas_serve_list_and_remove(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    image = await build_site(runtime, key)
    web = DesiredService(name="web", image=image, port=8080)

    started = [await runtime.start_container(key, web, "c0ffee", replica) for replica in (0, 1)]

    for container in started:
        assert container.running and container.address is not None
        page = partial(answers, container.address, f"hello {key.tenant}\n")
        await async_wait_until(page, timeout=10, what=f"{container.name} to serve")
    listed = await runtime.list_containers(key)
    assert [(c.id, c.host_port) for c in listed] == [(c.id, c.host_port) for c in started]
    assert {(c.service, c.revision, c.spec_hash) for c in listed} == {
        ("web", "c0ffee", web.spec_hash)
    }
    assert [c.replica for c in listed] == [0, 1]
    assert listed[0].name == f"ry-{key.slug}-web-{web.spec_hash[:8]}-0"
    assert engine.containers.get(listed[0].id).labels == key.labels() | {
        labels.SERVICE: "web",
        labels.REVISION: "c0ffee",
        labels.SPEC_HASH: web.spec_hash,
        labels.REPLICA: "0",
    }
    assert await runtime.list_containers(EnvironmentKey(key.tenant, "shop", "pr-1")) == []
    assert {c.id for c in started} <= {c.id for c in await runtime.list_containers()}

    await runtime.remove_container(started[0].id, stop_timeout=5)
    await runtime.remove_container(started[0].id)

    assert [c.id for c in await runtime.list_containers(key)] == [started[1].id]
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(started[0].id)


async def test_failing_build_reports_the_failing_step(
    runtime: DockerRuntime, key: EnvironmentKey
) -> None:
    image = f"railyard/{key.tenant}-shop-broken:1"
    dockerfile = f"FROM busybox:stable\nRUN echo building {key.tenant} && exit 3\n".encode()

    with pytest.raises(BuildError) as failure:
        await runtime.build_image(
            image, context_tar({"Dockerfile": dockerfile}), BuildSource(), lambda _: None
        )

    assert f"RUN echo building {key.tenant} && exit 3" in failure.value.log_tail
    assert "non-zero code: 3" in failure.value.message
    assert not await runtime.image_exists(image)


async def test_start_replaces_a_crashed_leftover_of_the_same_name(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    image = await build_site(runtime, key)
    web = DesiredService(name="web", image=image, port=8080)
    crashed = await runtime.start_container(key, web, "c0ffee", 0)
    engine.containers.get(crashed.id).kill()

    replacement = await runtime.start_container(key, web, "c0ffee", 0)

    assert replacement.name == crashed.name and replacement.id != crashed.id
    [observed] = await runtime.list_containers(key)
    assert observed.id == replacement.id and observed.running


async def test_containers_are_hardened_limited_and_get_env_command_and_volumes(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    image = await build_site(runtime, key)
    preview = EnvironmentKey(key.tenant, "shop", "feat/x")
    worker = DesiredService(
        name="worker",
        image=image,
        env=(("GREETING", "from-env"),),
        command=("sh", "-c", "echo hello $GREETING; exec sleep 60"),
        resources=Resources(memory_bytes=64 * 1024 * 1024, cpus=0.5, pids=64),
        volumes=(("data", "/data"),),
    )
    plain = DesiredService(name="web", image=image, port=8080)

    limited = await runtime.start_container(preview, worker, "c0ffee", 0)
    defaults = await runtime.start_container(key, plain, "c0ffee", 0)

    host = engine.api.inspect_container(limited.id)["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Init"] is True
    assert host["Privileged"] is False
    assert host["RestartPolicy"]["Name"] == "no"
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (
        64 * 1024 * 1024,
        500_000_000,
        64,
    )
    assert host["Binds"] == [f"{key.tenant}-shop-feat-x-data:/data:rw"]
    assert limited.name.startswith(f"ry-{key.tenant}-shop-feat-x-worker-")
    await async_wait_until(
        lambda: _logs_contain(runtime, limited.id, "hello from-env"), timeout=10, what="logs"
    )
    default_host = engine.api.inspect_container(defaults.id)["HostConfig"]
    assert (default_host["Memory"], default_host["PidsLimit"]) == (512 * 1024 * 1024, 512)
    assert default_host["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"


async def _logs_contain(runtime: DockerRuntime, container_id: str, text: str) -> bool:
    return text in await runtime.container_logs(container_id, tail=5)


async def test_missing_images_and_an_unreachable_engine_raise_runtime_unavailable(
    runtime: DockerRuntime, key: EnvironmentKey
) -> None:
    missing = f"railyard/{key.tenant}-absent:1"
    with pytest.raises(RuntimeUnavailable, match=f"pulling {missing} failed"):
        await runtime.pull_image(missing, lambda _: None)
    with pytest.raises(RuntimeUnavailable, match=f"image '{missing}' is not in the Docker engine"):
        await runtime.start_container(key, DesiredService(name="web", image=missing), "c0ffee", 0)

    unreachable = DockerRuntime(lambda: docker.DockerClient(base_url="unix:///nonexistent.sock"))
    with pytest.raises(RuntimeUnavailable, match="Docker engine unreachable"):
        await unreachable.list_containers()


BUSYBOX = "busybox:stable"
SERVE_PAGE = 'mkdir -p /www && echo "$PAGE" > /www/index.html && exec httpd -f -p 8080 -h /www'


def page_service(name: str, page: str) -> DesiredService:
    """busybox httpd answering ``page`` on 8080, without building an image."""
    return DesiredService(
        name=name, image=BUSYBOX, port=8080, env=(("PAGE", page),), command=("sh", "-c", SERVE_PAGE)
    )


async def serving(runtime: DockerRuntime, key: EnvironmentKey, service: str, page: str) -> None:
    [container] = [c for c in await runtime.list_containers(key) if c.service == service]
    assert container.address is not None
    check = partial(answers, container.address, f"{page}\n")
    await async_wait_until(check, timeout=10, what=f"{service} to serve on {container.address}")


async def fetch(runtime: DockerRuntime, key: EnvironmentKey, url: str) -> tuple[int, str]:
    """GET ``url`` from a one-off container of the environment."""
    client = DesiredService(name="client", image=BUSYBOX)
    result = await runtime.run_task(key, client, ("wget", "-qO-", url), "c0ffee", timeout=10)
    return result.exit_code, result.output


def networks_named(engine: docker.DockerClient, name: str) -> list[str]:
    return [n.id for n in engine.networks.list(names=[name]) if n.name == name]


async def test_services_of_an_environment_reach_each_other_by_service_name(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    api, web = page_service("api", f"api of {key.tenant}"), page_service("web", "web")

    # Started at once: the environment must still end up with exactly one network.
    started = await asyncio.gather(
        runtime.start_container(key, api, "c0ffee", 0),
        runtime.start_container(key, web, "c0ffee", 0),
    )

    [network] = networks_named(engine, network_name(key))
    assert engine.networks.get(network).attrs["Labels"] == key.labels()
    for container in started:
        attached = engine.api.inspect_container(container.id)["NetworkSettings"]["Networks"]
        assert list(attached) == [network_name(key)]
        assert container.service in attached[network_name(key)]["Aliases"]
    await serving(runtime, key, "api", f"api of {key.tenant}")
    assert await fetch(runtime, key, "http://api:8080/index.html") == (0, f"api of {key.tenant}\n")
    assert key in await runtime.list_networks()


async def test_each_environment_has_its_own_network(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    preview = EnvironmentKey(key.tenant, "shop", "pr-1")
    await runtime.start_container(key, page_service("api", "production api"), "c0ffee", 0)
    await runtime.start_container(preview, page_service("api", "preview api"), "beef", 0)
    await runtime.start_container(preview, page_service("billing", "billing"), "beef", 0)
    await serving(runtime, preview, "billing", "billing")
    await serving(runtime, key, "api", "production api")
    await serving(runtime, preview, "api", "preview api")

    assert await fetch(runtime, key, "http://api:8080/index.html") == (0, "production api\n")
    assert await fetch(runtime, preview, "http://api:8080/index.html") == (0, "preview api\n")
    exit_code, output = await fetch(runtime, key, "http://billing:8080/index.html")
    assert exit_code != 0 and "bad address" in output
    assert {key, preview} <= set(await runtime.list_networks())
    assert networks_named(engine, network_name(key)) != networks_named(
        engine, network_name(preview)
    )


async def test_removing_an_environment_removes_its_containers_and_network(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    other = EnvironmentKey(key.tenant, "shop", "pr-2")
    other_railyard = EnvironmentKey(key.tenant, "shop", "production", instance="other")
    sleeper = DesiredService(name="worker", image=BUSYBOX, command=("sleep", "60"))
    await runtime.start_container(key, sleeper, "c0ffee", 0)
    kept = {
        neighbour: await runtime.start_container(neighbour, sleeper, "c0ffee", 0)
        for neighbour in (other, other_railyard)
    }

    await runtime.remove_environment_resources(key)
    await runtime.remove_environment_resources(key)

    assert await runtime.list_containers(key) == []
    assert networks_named(engine, network_name(key)) == []
    assert key not in await runtime.list_networks()
    for neighbour, container in kept.items():
        assert [c.id for c in await runtime.list_containers(neighbour)] == [container.id]
        assert neighbour in await runtime.list_networks()


def build_labelled(engine: docker.DockerClient, tag: str) -> str:
    """A distinct image (its own id) per tag, built in well under a second."""
    dockerfile = f"FROM {BUSYBOX}\nLABEL railyard.test={tag}\n".encode()
    image, _ = engine.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    return str(image.id)


async def test_prune_images_removes_only_unused_unlisted_tags_of_the_prefix(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    repo = f"railyard/{key.tenant}-shop-web"
    tags = {name: f"{repo}:{name}" for name in ("old1", "old2", "kept", "running", "stopped")}
    other_app = f"railyard/{key.tenant}-shopping-web:old"
    for tag in [*tags.values(), other_app]:
        await asyncio.to_thread(build_labelled, engine, tag)
    sleeper = DesiredService(name="web", image=tags["running"], command=("sleep", "60"))
    await runtime.start_container(key, sleeper, "c0ffee", 0)
    engine.containers.create(tags["stopped"], labels={labels.TENANT: key.tenant})

    removed = await runtime.prune_images(f"{key.tenant}-shop-", keep=[tags["kept"]])

    assert removed == [tags["old1"], tags["old2"]]
    for name in ("kept", "running", "stopped"):
        assert await runtime.image_exists(tags[name])
    assert await runtime.image_exists(other_app)
    assert await runtime.image_exists(BUSYBOX)
    assert not await runtime.image_exists(tags["old1"])
    assert await runtime.prune_images(f"{key.tenant}-shop-", keep=[tags["kept"]]) == []


async def test_follow_logs_yields_new_lines_and_ends_when_the_container_stops(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    script = (
        "echo old; echo ready; until [ -e /go ]; do sleep 0.05; done; echo after-1; echo after-2"
    )
    talker = DesiredService(name="talker", image=BUSYBOX, command=("sh", "-c", script))
    container = await runtime.start_container(key, talker, "c0ffee", 0)
    await async_wait_until(lambda: _logs_contain(runtime, container.id, "ready"), timeout=10)

    async with asyncio.timeout(15), aclosing(runtime.follow_logs(container.id, tail=1)) as lines:
        first = await anext(lines)
        await asyncio.to_thread(engine.containers.get(container.id).exec_run, ["touch", "/go"])
        rest = [line async for line in lines]

    assert (first, rest) == ("ready", ["after-1", "after-2"])
    assert not follower_threads(container.id)


async def test_a_follower_that_stops_reading_leaves_no_thread_and_missing_is_not_found(
    runtime: DockerRuntime, key: EnvironmentKey
) -> None:
    script = "echo started; exec sleep 60"
    sleeper = DesiredService(name="sleeper", image=BUSYBOX, command=("sh", "-c", script))
    container = await runtime.start_container(key, sleeper, "c0ffee", 0)

    async with asyncio.timeout(15), aclosing(runtime.follow_logs(container.id)) as lines:
        assert await anext(lines) == "started"
        assert follower_threads(container.id)

    assert not follower_threads(container.id)
    with pytest.raises(NotFoundError):
        await anext(runtime.follow_logs(f"gone-{key.tenant}"))


def follower_threads(container_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if container_id in t.name and t.is_alive()]


async def test_a_failing_docker_healthcheck_is_observed_as_unhealthy(
    runtime: DockerRuntime, key: EnvironmentKey
) -> None:
    image = f"railyard/{key.tenant}-shop-sick:1"
    dockerfile = f"FROM {BUSYBOX}\nHEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD false\n"
    await runtime.build_image(
        image, context_tar({"Dockerfile": dockerfile.encode()}), BuildSource(), lambda _: None
    )
    sick = DesiredService(name="sick", image=image, command=("sleep", "60"))
    container = await runtime.start_container(key, sick, "c0ffee", 0)
    assert container.state == "running"

    async def unhealthy() -> bool:
        [observed] = await runtime.list_containers(key)
        return observed.state == "unhealthy" and not observed.running

    await async_wait_until(unhealthy, timeout=15, what="Docker's health check to fail")


async def test_a_new_network_adopts_replicas_started_before_networks_existed(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    legacy = page_service("legacy", "started on the default bridge")
    engine.containers.run(
        BUSYBOX,
        list(legacy.command or ()),
        environment=dict(legacy.env),
        labels=key.labels() | {labels.SERVICE: "legacy", labels.SPEC_HASH: legacy.spec_hash},
        detach=True,
    )

    await runtime.start_container(key, page_service("web", "web"), "c0ffee", 0)

    async def reached() -> tuple[int, str] | None:
        reply = await fetch(runtime, key, "http://legacy:8080/index.html")
        return reply if reply[0] == 0 else None

    reply = await async_wait_until(reached, timeout=10, interval=0.2, what="legacy by name")
    assert reply == (0, "started on the default bridge\n")


async def test_a_read_only_service_cannot_write_its_image_but_can_write_tmp(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    image = await build_site(runtime, key)
    locked = DesiredService(name="locked", image=image, read_only=True)
    script = (
        "touch /tmp/ok && echo tmp-ok; "
        "touch /www/x 2>/dev/null && echo root-writable || echo root-read-only"
    )
    result = await runtime.run_task(key, locked, ("sh", "-c", script), "c0ffee", timeout=30)
    assert result.exit_code == 0
    assert "tmp-ok" in result.output and "root-read-only" in result.output


async def test_a_task_pinned_to_new_replicas_never_reaches_an_old_one_by_name(
    runtime: DockerRuntime, key: EnvironmentKey, engine: docker.DockerClient
) -> None:
    old = await runtime.start_container(key, page_service("db", "old db"), "c0ffee", 0)
    new = await runtime.start_container(key, page_service("db", "new db"), "beef", 0)
    gone = await runtime.start_container(key, page_service("db", "gone db"), "beef", 1)
    await runtime.remove_container(gone.id, stop_timeout=1)
    for container, page in ((old, "old db"), (new, "new db")):
        assert container.address is not None
        check = partial(answers, container.address, f"{page}\n")
        await async_wait_until(check, timeout=10, what=f"{page} to serve")
    script = "for i in 1 2 3 4 5 6 7 8; do wget -qO- http://db:8080/index.html; done"
    client = DesiredService(name="client", image=BUSYBOX)

    result = await runtime.run_task(
        key, client, ("sh", "-c", script), "c0ffee", timeout=30, peers={"db": [gone.id, new.id]}
    )

    assert (result.exit_code, result.output) == (0, "new db\n" * 8)
    networks = engine.api.inspect_container(new.id)["NetworkSettings"]["Networks"]
    assert result.pinned == {"db": (networks[network_name(key)]["IPAddress"],)}
