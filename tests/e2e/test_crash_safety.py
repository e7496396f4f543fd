"""kill -9 at a random moment of a deploy, then a restart: everything converges.

Each round pushes a new version, kills a process somewhere between "just pushed" and
"deploy finished", starts it again, and waits for: the new version served, exactly the
wanted replicas running (nothing orphaned), and no deployment left pending or running.

* Embedded (SQLite, in-process broker): `railyard up` itself is killed, ten rounds.
* PostgreSQL + Redis, with a second `railyard worker`: either process is killed, five
  rounds. The dead worker's message comes back through Dramatiq's broker and its
  environment lock lapses with its lease (both within seconds).
"""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import docker
import pytest

from tests.e2e.conftest import BACKENDS, _remove_owned, backend
from tests.e2e.harness import Railyard, running_railyard
from tests.e2e.test_push_to_deploy import app_files
from tests.gitrepo import GitRepo
from tests.support import wait_until

REPLICAS = 2


@pytest.fixture(params=BACKENDS)
def crashable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Railyard]:
    with backend(request.param) as extra:
        workers = 1 if extra else 0
        with running_railyard(tmp_path / "home", workers=workers, **extra) as railyard:
            yield railyard


def app_state(app: str) -> list[tuple[str, str]]:
    """(revision, state) of each of the app's containers, from one listing call."""
    client = docker.from_env()
    try:
        containers = client.api.containers(all=True, filters={"label": f"railyard.app={app}"})
        return sorted(
            ((c.get("Labels") or {}).get("railyard.revision", ""), c["State"]) for c in containers
        )
    finally:
        client.close()


def converged(railyard: Railyard, app: str, host: str, body: str, revision: str) -> bool:
    if railyard.edge_text(host) != body:
        return False
    if app_state(app) != [(revision, "running")] * REPLICAS:
        return False
    statuses = {row["status"] for row in railyard.deployments(app)}
    return not statuses & {"pending", "running"}


def kill_one(railyard: Railyard, chaos: random.Random) -> str:
    """kill -9 of `railyard up` or, in Redis mode, of a worker process; then start it again."""
    if railyard.workers and chaos.random() < 0.5:
        worker = chaos.choice(railyard.workers)
        worker.kill()
        worker.start()
        return f"worker-{worker.number}"
    railyard.kill()
    railyard.start()
    return "railyard up"


def test_kill_minus_nine_at_random_steps_always_converges(
    crashable: Railyard, tmp_path: Path
) -> None:
    seed = int(os.environ.get("RAILYARD_CRASH_SEED", random.randrange(1 << 30)))
    chaos = random.Random(seed)
    rounds = 5 if crashable.workers else 10
    app = f"crash-{uuid.uuid4().hex[:6]}"
    host = f"{app}.localhost"
    repo = GitRepo.create(tmp_path, app)
    files = app_files(app, "v0")
    manifest = str(files["paas.yaml"])
    files["paas.yaml"] = manifest.replace("port: 8080", f"port: 8080\n    replicas: {REPLICAS}")
    revision = repo.commit(files, "v0")
    crashable.cli_json("apps", "add", app, "--repo", repo.url)
    try:
        wait_until(
            lambda: converged(crashable, app, host, "v0\n", revision),
            timeout=60,
            what="the first deploy",
        )
        for round_number in range(1, rounds + 1):
            body = f"v{round_number}"
            revision = repo.commit({"www/index.html": body + "\n"}, body)
            delay = chaos.uniform(0.0, 4.0)
            # The chaos itself: a random moment of the deploy to crash at (not a wait for
            # an outcome; the outcome is waited for below, with a deadline).
            threading.Event().wait(delay)
            killed = kill_one(crashable, chaos)
            wait_until(
                partial(converged, crashable, app, host, body + "\n", revision),
                timeout=60,
                what=(
                    f"round {round_number} (seed {seed}, {killed} killed after {delay:.2f}s)"
                    " to converge"
                ),
            )
    finally:
        crashable.cli("apps", "delete", app, "--yes", check=False)
        _remove_owned(app)
