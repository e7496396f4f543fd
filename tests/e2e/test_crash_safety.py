"""kill -9 of `railyard up` at a random moment of a deploy, then a restart: everything converges.

Ten rounds. Each pushes a new version, kills the whole process (worker, API and all)
somewhere between "just pushed" and "deploy finished", starts it again, and waits for:
the new version served, exactly the wanted replicas running (nothing orphaned), and no
deployment left pending or running.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import docker
import pytest

from tests.e2e.conftest import _remove_owned
from tests.e2e.harness import Railyard, railyard_env
from tests.e2e.test_push_to_deploy import app_files
from tests.gitrepo import GitRepo, free_port
from tests.support import docker_available, nginx_binary, unavailable, wait_until

ROUNDS = 10
REPLICAS = 2


@pytest.fixture
def crashable(tmp_path: Path) -> Iterator[Railyard]:
    if not docker_available() or nginx_binary() is None:
        unavailable("Docker engine and nginx are needed")
    home = tmp_path / "home"
    api_port, edge_port = free_port(), free_port()
    railyard = Railyard(home, railyard_env(home, api_port, edge_port), api_port, edge_port)
    railyard.start()
    try:
        yield railyard
    finally:
        railyard.stop()


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


def test_kill_minus_nine_at_random_steps_always_converges(
    crashable: Railyard, tmp_path: Path
) -> None:
    seed = int(os.environ.get("RAILYARD_CRASH_SEED", random.randrange(1 << 30)))
    chaos = random.Random(seed)
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
        for round_number in range(1, ROUNDS + 1):
            body = f"v{round_number}"
            revision = repo.commit({"www/index.html": body + "\n"}, body)
            delay = chaos.uniform(0.0, 4.0)
            # The chaos itself: a random moment of the deploy to crash at (not a wait for
            # an outcome; the outcome is waited for below, with a deadline).
            threading.Event().wait(delay)
            assert crashable.process is not None
            crashable.process.send_signal(signal.SIGKILL)
            crashable.process.wait(timeout=10)
            crashable.start()
            wait_until(
                partial(converged, crashable, app, host, body + "\n", revision),
                timeout=60,
                what=f"round {round_number} (seed {seed}, killed after {delay:.2f}s) to converge",
            )
    finally:
        crashable.cli("apps", "delete", app, "--yes", check=False)
        _remove_owned(app)
