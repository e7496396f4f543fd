from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.harness import INSTANCES, Railyard, running_railyard
from tests.support import docker_available, nginx_binary, port_open, unavailable, wait_until


def _remove_owned(app: str) -> None:
    """Remove every container, network and image of a test app, even if a reconcile still
    running in `railyard up` races with the removal (it is retried until nothing is left)."""
    import docker
    import docker.errors

    client = docker.from_env()
    label = {"label": f"railyard.app={app}"}

    def sweep() -> bool:
        try:
            for container in client.api.containers(all=True, filters=label):
                client.api.remove_container(container["Id"], force=True)
            for network in client.api.networks(filters=label):
                client.api.remove_network(network["Id"])
            for image in client.images.list(filters={"reference": f"railyard/*-{app}-*"}):
                client.images.remove(image.id, force=True)
        except docker.errors.APIError:
            return False  # something was still in use or already gone: sweep again
        return not client.api.containers(all=True, filters=label)

    try:
        wait_until(sweep, timeout=30, interval=0.5, what=f"leftovers of {app} to be removed")
    finally:
        client.close()


async def _create_database(name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def _forget_namespace(url: str, namespace: str) -> None:
    """Delete the keys of one Railyard (its queues and locks), and nobody else's."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{namespace}*", count=500):
            client.delete(key)
    finally:
        client.close()


BACKENDS = ["sqlite+inprocess", "postgres+redis"]
EMBEDDED, SCALED_OUT = BACKENDS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.backends(...)``: a behaviour that does not depend on the database
    and queue is run on one backend only, the rest of its parametrisation deselected."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        backend_name = callspec.params.get("railyard") if callspec is not None else None
        if marker is None or backend_name is None or backend_name in marker.args:
            kept.append(item)
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@contextmanager
def backend(name: str) -> Iterator[dict[str, str]]:
    """The settings of one backend: the embedded default (SQLite, in-process broker), or a
    fresh PostgreSQL database and a Redis namespace of its own, dropped afterwards (test
    runs side by side on one machine never share queues or locks)."""
    if not docker_available():
        unavailable("Docker engine not reachable (run scripts/ensure-system.sh)")
    if nginx_binary() is None:
        unavailable("nginx not installed")
    if name == "sqlite+inprocess":
        yield {}
        return
    if not port_open("127.0.0.1", 5432) or not port_open("127.0.0.1", 6379):
        unavailable("PostgreSQL on :5432 and Redis on :6379 are needed for this backend")
    suffix = uuid.uuid4().hex[:8]
    database, namespace = f"railyard_e2e_{suffix}", f"railyard-e2e-{suffix}"
    redis_url = "redis://127.0.0.1:6379/7"
    asyncio.run(_create_database(database))
    try:
        yield {
            "RAILYARD_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
            "RAILYARD_REDIS_URL": redis_url,
            "RAILYARD_REDIS_NAMESPACE": namespace,
        }
    finally:
        asyncio.run(_drop_database(database))
        _forget_namespace(redis_url, namespace)


@pytest.fixture(scope="module", params=BACKENDS)
def railyard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Railyard]:
    home = tmp_path_factory.mktemp("railyard-home")
    with backend(request.param) as extra:
        # With Redis, a second worker process competes for the same messages: the
        # per-environment lock keeps two reconciles of one environment from interleaving.
        workers = 1 if extra else 0
        with running_railyard(home, workers=workers, **extra) as instance:
            yield instance
    leftovers = list(Path(home).glob("nginx/*.pid"))
    for pid_file in leftovers:
        pid = pid_file.read_text().strip()
        assert not pid or not Path(f"/proc/{pid}").exists(), "nginx left running after stop"


@pytest.fixture
def app_name(railyard: Railyard) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    try:
        yield name
    finally:
        railyard.cli("apps", "delete", name, "--yes", check=False)
        _remove_owned(name)


def _test_leftovers() -> list[str]:
    """Containers and networks of the Railyards this run started (by installation id)."""
    import docker

    client = docker.from_env()
    try:
        found = [
            f"container {c['Names'][0]}"
            for c in client.api.containers(all=True, filters={"label": "railyard.managed=true"})
            if (c.get("Labels") or {}).get("railyard.instance") in INSTANCES
        ]
        found += [
            f"network {n['Name']}"
            for n in client.api.networks(filters={"label": "railyard.managed=true"})
            if (n.get("Labels") or {}).get("railyard.instance") in INSTANCES
        ]
        return found
    finally:
        client.close()


@pytest.fixture(scope="session", autouse=True)
def nothing_leaks() -> Iterator[None]:
    """After the end-to-end tests, no container or network of a test app is left behind."""
    yield
    if not docker_available():
        return
    try:
        wait_until(lambda: not _test_leftovers(), timeout=30, interval=0.5, what="no leftovers")
    except AssertionError as exc:
        raise AssertionError(f"e2e tests left behind: {_test_leftovers()}") from exc
