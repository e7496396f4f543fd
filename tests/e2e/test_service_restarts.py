"""The services under Railyard restart in the middle of a push: what runs keeps serving, and
the push is deployed once they are back. Restarted with the same commands that start them
on this kind of machine."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import EMBEDDED, SCALED_OUT
from tests.e2e.harness import Railyard
from tests.e2e.test_push_to_deploy import app_files, assert_succeeded
from tests.gitrepo import GitRepo
from tests.support import port_open, unavailable, wait_until

ENSURE_SYSTEM = Path(__file__).resolve().parents[2] / "scripts" / "ensure-system.sh"
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


def _postgres_version() -> str:
    clusters = Path("/etc/postgresql")
    versions = sorted(p.name for p in clusters.glob("*")) if clusters.exists() else []
    if not versions:
        unavailable("no local PostgreSQL cluster to restart (/etc/postgresql is empty)")
    return versions[-1]


@contextmanager
def stopped(stop: list[str], start: list[str], port: int) -> Iterator[None]:
    subprocess.run(stop, check=True, capture_output=True, timeout=60)
    wait_until(lambda: not port_open("127.0.0.1", port), timeout=30, what=f"port {port} closed")
    try:
        yield
    finally:
        subprocess.run(start, check=True, capture_output=True, timeout=60)
        wait_until(lambda: port_open("127.0.0.1", port), timeout=60, what=f"port {port} open")


def _deploy(railyard: Railyard, app: str, tmp_path: Path) -> GitRepo:
    repo = GitRepo.create(tmp_path, app)
    first = repo.commit(app_files(app, "before"), "before")
    railyard.cli_json("apps", "add", app, "--repo", repo.url)
    assert_succeeded(railyard.wait_for_deployment(app, first))
    return repo


@pytest.mark.backends(SCALED_OUT)  # PostgreSQL and Redis restarts concern this backend
def test_a_push_during_a_database_and_a_redis_restart_is_deployed_after_it(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo = _deploy(railyard, app_name, tmp_path)
    version = _postgres_version()
    cluster = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
    with stopped([*cluster, "stop"], [*cluster, "start"], 5432):
        repo.commit({"www/index.html": "during postgres\n"}, "during postgres")
        assert railyard.edge_text(host) == "before\n", "what runs keeps serving"
    wait_until(lambda: railyard.edge_text(host) == "during postgres\n", timeout=90)
    with stopped(["redis-cli", "shutdown", "nosave"], REDIS_START, 6379):
        repo.commit({"www/index.html": "during redis\n"}, "during redis")
        assert railyard.edge_text(host) == "during postgres\n"
    wait_until(lambda: railyard.edge_text(host) == "during redis\n", timeout=90)


@pytest.mark.backends(EMBEDDED)  # one engine restart is enough
def test_a_docker_engine_restart_is_repaired(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    _deploy(railyard, app_name, tmp_path)
    subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=True, timeout=30)
    try:
        wait_until(
            lambda: subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode,
            timeout=60,
            what="dockerd to stop",
        )
    finally:
        subprocess.run(["bash", str(ENSURE_SYSTEM)], check=True, timeout=300)
    # The engine stopped the app's container with it; the resync finds and replaces it.
    wait_until(lambda: railyard.edge_text(host) == "before\n", timeout=90, what="repaired")
    drift = [row for row in railyard.deployments(app_name) if row["trigger"] == "drift"]
    assert drift and drift[0]["status"] == "succeeded"
