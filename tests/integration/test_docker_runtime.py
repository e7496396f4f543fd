"""DockerRuntime against the real engine: build, run, observe, replace, remove, harden.

Every test owns a unique tenant; the fixture removes every container, volume and
image carrying it, whatever the test did.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import AsyncIterator, Iterator
from functools import partial
from uuid import uuid4

import docker
import docker.errors
import httpx
import pytest

from controller import labels
from controller.errors import BuildError, RuntimeUnavailable
from controller.runtime.docker import DockerRuntime
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


@pytest.fixture
def engine(docker_engine: None) -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def key(engine: docker.DockerClient) -> Iterator[EnvironmentKey]:
    tenant = f"t{uuid4().hex[:8]}"
    try:
        yield EnvironmentKey(tenant, "shop", "production")
    finally:
        owned = {"label": f"{labels.TENANT}={tenant}"}
        for container in engine.containers.list(all=True, filters=owned):
            container.remove(force=True)
        for volume in engine.volumes.list(filters=owned):
            volume.remove(force=True)
        for image in engine.images.list(filters={"reference": f"railyard/{tenant}-*"}):
            for tag in image.tags:
                engine.images.remove(tag)


@pytest.fixture
async def runtime(docker_engine: None) -> AsyncIterator[DockerRuntime]:
    runtime = DockerRuntime()
    try:
        yield runtime
    finally:
        await runtime.close()


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
