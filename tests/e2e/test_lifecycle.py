"""Lifecycle on real Docker and nginx: dependencies and release commands, recreate, deletion."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import docker
import pytest

from tests.e2e.conftest import EMBEDDED
from tests.e2e.harness import RAILYARD, Railyard
from tests.e2e.test_push_to_deploy import (
    DOCKERFILE,
    app_files,
    assert_succeeded,
    containers_of,
)
from tests.gitrepo import GitRepo
from tests.support import wait_until

MIGRATE = "wget -qO- $DB_URL/healthz && echo migrated {body}"
READ_VERSION_SIX_TIMES = "for i in 1 2 3 4 5 6; do wget -qO- $DB_URL/version || exit 1; done"


def two_services(
    app: str,
    body: str,
    *,
    strategy: str = "rolling",
    release: str = MIGRATE,
    version: str = "v1",
) -> dict[str, str | None]:
    """db and web, both serving ``www/``; web depends on db and its release reaches db by
    service name (``release``, a shell line; ``{body}`` is replaced). db answers
    ``version`` on /version."""
    command = release.replace("{body}", body)
    manifest = f"""version: 1
services:
  db:
    build: {{context: ., dockerfile: Dockerfile}}
    port: 8080
    healthcheck: {{path: /healthz}}
  web:
    build: {{context: ., dockerfile: Dockerfile}}
    port: 8080
    healthcheck: {{path: /healthz}}
    depends_on: [db]
    release: ["sh", "-c", "{command}"]
    env: {{DB_URL: "${{{{ services.db.internal_url }}}}"}}
    deploy: {{strategy: {strategy}}}
    routes:
      - host: {app}.localhost
"""
    return {
        "paas.yaml": manifest,
        "Dockerfile": DOCKERFILE,
        "www/version": version + "\n",
        "www/index.html": body + "\n",
        "www/healthz": "ok\n",
    }


def reasons_and_messages(railyard: Railyard, deployment_id: str) -> list[tuple[str, str]]:
    detail = railyard.cli_json("deployment", deployment_id)
    return [(event["reason"], event["message"]) for event in detail["events"]]


def test_dependencies_start_first_and_the_release_runs_before_cutover(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    repo = GitRepo.create(tmp_path, app_name)
    first = repo.commit(two_services(app_name, "one"), "first")
    railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    deployment = railyard.wait_for_deployment(app_name, first, timeout=120)
    assert_succeeded(deployment)
    events = reasons_and_messages(railyard, deployment["id"])
    steps = [message for reason, message in events if reason == "step_started"]
    order = [
        next(i for i, s in enumerate(steps) if s.startswith("wait until db is healthy")),
        next(i for i, s in enumerate(steps) if s.startswith("run release of web")),
        next(i for i, s in enumerate(steps) if s.startswith("start web replica")),
        next(i for i, s in enumerate(steps) if s.startswith("switch routes")),
    ]
    assert order == sorted(order), steps
    # The release reached db by its service name over the environment's own network.
    assert ("release_output", "ok\nmigrated one") in events
    assert railyard.edge_text(f"{app_name}.localhost") == "one\n"


@pytest.mark.backends(EMBEDDED)  # release pinning does not depend on the backend
def test_a_release_reaches_the_new_db_while_the_old_one_still_runs(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    repo = GitRepo.create(tmp_path, app_name)
    first = repo.commit(
        two_services(app_name, "one", release=READ_VERSION_SIX_TIMES, version="v1"), "first"
    )
    railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    assert_succeeded(railyard.wait_for_deployment(app_name, first, timeout=120))

    # The old db (v1) keeps its name on the network until the end of this deployment.
    second = repo.commit({"www/version": "v2\n", "www/index.html": "two\n"}, "second")
    deployment = railyard.wait_for_deployment(app_name, second, timeout=120)

    assert_succeeded(deployment)
    events = reasons_and_messages(railyard, deployment["id"])
    assert [m for r, m in events if r == "release_output"] == ["\n".join(["v2"] * 6)], events
    assert any(r == "release_pinned" and "reaches db at" in m for r, m in events), events
    assert railyard.edge_text(f"{app_name}.localhost") == "two\n"


@pytest.mark.backends(EMBEDDED)  # nor does the recreate order
def test_recreate_stops_the_old_replica_before_starting_the_new(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    repo = GitRepo.create(tmp_path, app_name)
    first = repo.commit(two_services(app_name, "one", strategy="recreate"), "first")
    railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    assert_succeeded(railyard.wait_for_deployment(app_name, first, timeout=120))
    second = repo.commit({"www/index.html": "two\n"}, "second")
    deployment = railyard.wait_for_deployment(app_name, second, timeout=120)
    assert_succeeded(deployment)
    steps = [m for r, m in reasons_and_messages(railyard, deployment["id"]) if r == "step_started"]
    removal = next(i for i, s in enumerate(steps) if s.startswith("remove") and "web" in s)
    start = next(i for i, s in enumerate(steps) if s.startswith("start web replica"))
    assert removal < start, steps
    assert railyard.edge_text(f"{app_name}.localhost") == "two\n"


def test_deleting_an_app_removes_its_containers_network_and_routes(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo = GitRepo.create(tmp_path, app_name)
    first = repo.commit(two_services(app_name, "doomed"), "first")
    railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    assert_succeeded(railyard.wait_for_deployment(app_name, first, timeout=120))
    assert len(containers_of(app_name)) == 2

    railyard.cli("apps", "delete", app_name, "--yes")

    def gone() -> bool:
        client = docker.from_env()
        try:
            networks = client.api.networks(filters={"label": f"railyard.app={app_name}"})
        finally:
            client.close()
        edge = railyard.edge(host)
        return not containers_of(app_name) and not networks and edge.status_code == 404

    wait_until(gone, timeout=30, interval=0.5, what="the resync to prune the deleted app")


@pytest.mark.backends(EMBEDDED)  # nor health probing
def test_a_replica_that_stops_passing_its_health_check_is_replaced(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo = GitRepo.create(tmp_path, app_name)
    first = repo.commit(two_services(app_name, "steady"), "first")
    railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    assert_succeeded(railyard.wait_for_deployment(app_name, first, timeout=120))
    client = docker.from_env()
    try:
        [sick] = client.containers.list(
            filters={"label": [f"railyard.app={app_name}", "railyard.service=web"]}
        )
        # Still running, port still open, but its health endpoint now answers 404.
        assert sick.exec_run(["rm", "/www/healthz"]).exit_code == 0
    finally:
        client.close()
    wait_until(
        lambda: sick.id not in containers_of(app_name) and railyard.edge_text(host) == "steady\n",
        timeout=45,
        interval=0.5,
        what="the resync to replace the unhealthy replica",
    )
    assert len(containers_of(app_name)) == 2


@pytest.mark.backends(EMBEDDED)  # nor log streaming
def test_logs_follow_streams_new_lines(railyard: Railyard, app_name: str, tmp_path: Path) -> None:
    repo = GitRepo.create(tmp_path, app_name)
    manifest = """version: 1
services:
  ticker:
    image: busybox:stable
    command: ["sh", "-c", "n=0; while true; do n=$((n+1)); echo tick $n; sleep 0.2; done"]
"""
    first = repo.commit({"paas.yaml": manifest}, "ticker")
    railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    assert_succeeded(railyard.wait_for_deployment(app_name, first, timeout=120))
    follower = subprocess.Popen(
        [RAILYARD, "logs", app_name, "ticker", "--follow", "--tail", "1"],
        env=railyard.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            seen.append(line.strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(lambda: len(seen) >= 5, timeout=30, what="five streamed log lines")
    finally:
        follower.terminate()
        follower.wait(timeout=10)
        reader.join(timeout=10)
    seen = seen[:5]
    numbers = [int(line.rsplit(" ", 1)[1]) for line in seen]
    assert all(line.startswith("ticker/0 | tick ") for line in seen), seen
    assert numbers == sorted(numbers) and numbers[-1] - numbers[0] == 4, "new lines, in order"


def test_a_revision_failing_soon_after_cutover_is_rolled_back_automatically(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo = GitRepo.create(tmp_path, app_name)
    files = app_files(app_name, "good")
    first = repo.commit(files, "good")
    railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    assert_succeeded(railyard.wait_for_deployment(app_name, first, timeout=120))
    # The next version passes its health check at cutover, then breaks a few seconds later.
    flaky = str(files["Dockerfile"]).replace(
        'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
        'CMD ["sh", "-c", "httpd -f -p 8080 -h /www & sleep 4; rm /www/healthz; wait"]',
    )
    second = repo.commit({"Dockerfile": flaky, "www/index.html": "flaky\n"}, "flaky")
    assert_succeeded(railyard.wait_for_deployment(app_name, second, timeout=120))

    def rolled_back() -> bool:
        rows = railyard.deployments(app_name)
        return (
            bool(rows)
            and rows[0]["trigger"] == "auto-rollback"
            and rows[0]["status"] == "succeeded"
        )

    wait_until(rolled_back, timeout=60, interval=0.5, what="the automatic rollback")
    latest = railyard.deployments(app_name)[0]
    assert latest["revision"] == first
    assert railyard.edge_text(host) == "good\n"
    flaky_deployment = railyard.cli_json("deployment", railyard.deployments(app_name)[1]["id"])
    assert any(e["reason"] == "unhealthy_after_cutover" for e in flaky_deployment["events"])
