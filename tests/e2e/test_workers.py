"""Several workers, one environment: two reconciles of it never run at once.

With the PostgreSQL + Redis backend, `railyard up` and a second `railyard worker` both take
reconcile messages from Redis. Pushes and redeploys arrive while deploys are running, until
both processes have reconciled the environment and one of them found it busy (the other
held its lock) and left a request instead. Then the record must show deployments one
after another, none interrupted, and the last push serving from exactly the wanted
replicas.
"""

from __future__ import annotations

import threading
from datetime import datetime
from itertools import count, pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import SCALED_OUT
from tests.e2e.harness import Railyard
from tests.e2e.test_push_to_deploy import app_files, containers_of
from tests.gitrepo import GitRepo
from tests.support import wait_until

SLOW_RELEASE = 'port: 8080\n    release: ["sleep", "2"]'
"""Each deployment holds the environment's lock for at least two seconds."""


def _redeploy_twice_at_once(railyard: Railyard, app: str) -> None:
    threads = [
        threading.Thread(target=railyard.cli, args=("redeploy", app), daemon=True) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


class WorkersSeen:
    """Which processes ran the app's deployments (each records a ``worker`` event)."""

    def __init__(self, railyard: Railyard, app: str) -> None:
        self.railyard = railyard
        self.app = app
        self.by_deployment: dict[str, str] = {}

    def pids(self) -> set[int]:
        for row in self.railyard.deployments(self.app):
            if row["id"] in self.by_deployment or row["status"] in ("pending", "running"):
                continue
            detail = self.railyard.cli_json("deployment", row["id"])
            events = [e["message"] for e in detail["events"] if e["reason"] == "worker"]
            self.by_deployment[row["id"]] = events[0] if events else ""
        return {int(m.rsplit(" ", 1)[1]) for m in self.by_deployment.values() if m}


def _logs(railyard: Railyard) -> list[str]:
    paths = [railyard.log_path, *(worker.log_path for worker in railyard.workers)]
    return [path.read_text(errors="replace") for path in paths]


def _took_turns(railyard: Railyard, environment_id: str) -> bool:
    """Every process reconciled the environment, and one found it busy (another held it)
    and left a request instead of reconciling beside it."""
    ran = f"reconcile {environment_id[:8]} ("
    busy = f"env:{environment_id} is busy: left a"
    logs = _logs(railyard)
    return all(ran in text for text in logs) and any(busy in text for text in logs)


def _interval(row: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(row["started_at"]), datetime.fromisoformat(row["finished_at"])


@pytest.mark.backends(SCALED_OUT)  # where a second worker process runs
def test_two_workers_never_reconcile_one_environment_at_once(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo = GitRepo.create(tmp_path, app_name)
    files = app_files(app_name, "v0")
    files["paas.yaml"] = str(files["paas.yaml"]).replace("port: 8080", SLOW_RELEASE)
    first = repo.commit(files, "v0")
    railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    environment_id = railyard.wait_for_deployment(app_name, first, timeout=120)["environment_id"]
    processes = [railyard.process, *(worker.process for worker in railyard.workers)]
    pids = {process.pid for process in processes if process is not None}
    versions = count(1)

    def both_workers_took_turns() -> bool:
        repo.commit({"www/index.html": f"v{next(versions)}\n"}, "another push")
        _redeploy_twice_at_once(railyard, app_name)
        return _took_turns(railyard, environment_id)

    wait_until(
        both_workers_took_turns,
        timeout=120,
        interval=1,
        what="both worker processes to reconcile the environment, one finding it busy",
    )
    last = repo.commit({"www/index.html": "last\n"}, "last push")
    wait_until(lambda: railyard.edge_text(host) == "last\n", timeout=120, what="the last push")

    def all_final() -> list[dict[str, Any]] | None:
        rows = railyard.deployments(app_name)
        return None if any(r["status"] in ("pending", "running") for r in rows) else rows

    finished = wait_until(all_final, timeout=120, what="every deployment to reach a final status")

    statuses = {row["status"] for row in finished}
    assert "interrupted" not in statuses, "a reconcile was cut short by another one"
    ran = sorted(
        (_interval(row) for row in finished if row["started_at"] and row["finished_at"]),
        key=lambda interval: interval[0],
    )
    for (_, end), (start, _) in pairwise(ran):
        assert end <= start, f"two deployments of one environment overlapped: {ran}"
    assert any(row["revision"] == last and row["status"] == "succeeded" for row in finished)
    assert len(containers_of(app_name)) == 1, "exactly the wanted replicas run"
    assert WorkersSeen(railyard, app_name).pids() <= pids, "each deployment names its process"
