"""A killed container is repaired within seconds, from the engine's event, not the resync.

This module's Railyard resyncs only every ten minutes, so nothing but the engine's event
can explain a repair within 20 seconds; the repair is still recorded as `drift`, as the
resync records it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.conftest import BACKENDS, backend
from tests.e2e.harness import Railyard, running_railyard
from tests.e2e.test_push_to_deploy import assert_succeeded, containers_of, register
from tests.support import wait_until

SLOW_RESYNC_SECONDS = "600"
REPAIR_DEADLINE_SECONDS = 20.0


@pytest.fixture(scope="module", params=BACKENDS)
def railyard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Railyard]:
    """conftest's ``railyard`` (so its ``app_name`` cleans up here too), resyncing slowly."""
    home = tmp_path_factory.mktemp("railyard-home")
    with (
        backend(request.param) as extra,
        running_railyard(home, RAILYARD_RESYNC_SECONDS=SLOW_RESYNC_SECONDS, **extra) as instance,
    ):
        yield instance


def kill(container_id: str) -> None:
    client = docker.from_env()
    try:
        client.containers.get(container_id).kill()
    finally:
        client.close()


def test_a_killed_container_is_replaced_within_seconds_and_recorded_as_drift(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    _, first = register(railyard, tmp_path, app_name, "alive")
    assert_succeeded(railyard.wait_for_deployment(app_name, first))
    wait_until(lambda: railyard.edge_text(host) == "alive\n", timeout=10, what="alive served")
    [victim] = containers_of(app_name)

    kill(victim)
    deadline = time.monotonic() + REPAIR_DEADLINE_SECONDS

    def replaced_and_serving() -> bool:
        replicas = containers_of(app_name)
        replaced = victim not in replicas and len(replicas) == 1
        return replaced and railyard.edge_text(host) == "alive\n"

    def drift_repair() -> dict[str, Any] | None:
        rows = railyard.deployments(app_name)
        return next((r for r in rows if r["trigger"] == "drift" and r["status"] != "running"), None)

    wait_until(replaced_and_serving, timeout=REPAIR_DEADLINE_SECONDS, interval=0.2, what="repair")
    remaining = max(deadline - time.monotonic(), 0.5)
    repair = wait_until(drift_repair, timeout=remaining, interval=0.3, what="the drift recorded")
    assert_succeeded(repair)
    assert repair["revision"] == first
    assert len(railyard.deployments(app_name)) == 2, "one deployment, one repair"
