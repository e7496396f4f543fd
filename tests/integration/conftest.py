"""Fixtures of the Docker integration tests: an engine, a tenant of one's own whose
containers, networks, volumes and images are removed afterwards, whatever the test did,
and the runtime adapter under test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import docker
import pytest

from controller import labels
from controller.runtime.docker import DockerRuntime
from controller.state import EnvironmentKey


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
        for network in engine.networks.list(filters=owned):
            network.remove()
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
