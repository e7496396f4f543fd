from __future__ import annotations

import pytest

from tests.support import docker_available, nginx_binary, port_open, unavailable


@pytest.fixture(scope="session")
def docker_engine() -> None:
    if not docker_available():
        unavailable("Docker engine not reachable (run scripts/ensure-system.sh)")


@pytest.fixture(scope="session")
def nginx_path() -> str:
    path = nginx_binary()
    if path is None:
        unavailable("nginx binary not installed (apt-get install nginx)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    if not port_open("127.0.0.1", 5432):
        unavailable("PostgreSQL not listening on 127.0.0.1:5432")
    return "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not port_open("127.0.0.1", 6379):
        unavailable("Redis not listening on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"
