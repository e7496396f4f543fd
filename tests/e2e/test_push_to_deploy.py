"""The walking skeleton, end to end on real git, Docker and nginx, driven like a user would."""

from __future__ import annotations

from pathlib import Path

import docker

from tests.e2e.harness import Railyard, RequestLoop
from tests.gitrepo import GitRepo
from tests.support import wait_until

DOCKERFILE = """FROM busybox:stable
COPY www /www
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""


def manifest(app: str, health: str = "/healthz") -> str:
    return f"""version: 1
services:
  web:
    build: {{context: ., dockerfile: Dockerfile}}
    port: 8080
    healthcheck: {{path: {health}}}
    routes:
      - host: {app}.localhost
"""


def app_files(app: str, body: str, health: str = "/healthz") -> dict[str, str | None]:
    return {
        "paas.yaml": manifest(app, health),
        "Dockerfile": DOCKERFILE,
        "www/index.html": body + "\n",
        "www/healthz": "ok\n",
    }


def containers_of(app: str) -> list[str]:
    client = docker.from_env()
    try:
        return [
            c.name
            for c in client.containers.list(all=True, filters={"label": f"railyard.app={app}"})
        ]
    finally:
        client.close()


def register(railyard: Railyard, tmp_path: Path, app: str, body: str) -> tuple[GitRepo, str]:
    repo = GitRepo.create(tmp_path, app)
    sha = repo.commit(app_files(app, body), "first")
    created = railyard.cli_json("apps", "add", app, "--repo", repo.url)
    assert created["name"] == app and created["webhook_secret"]
    return repo, sha


def test_push_deploys_then_replaces_with_zero_failed_requests(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo, first = register(railyard, tmp_path, app_name, "v1")
    assert railyard.wait_for_deployment(app_name, first)["status"] == "succeeded"
    wait_until(lambda: railyard.edge_text(host) == "v1\n", timeout=10, what="v1 served")
    [old_container] = containers_of(app_name)

    status = railyard.cli_json("status", app_name)
    [production] = status["environments"]
    assert production["revision"] == first
    assert production["services"][0]["running"] == 1
    assert f"http://{host}:{railyard.edge_port}/" in production["urls"]

    with RequestLoop(railyard, host) as loop:
        wait_until(lambda: loop.ok >= 20, timeout=10, what="the request loop to start")
        second = repo.commit({"www/index.html": "v2\n"}, "second")
        assert railyard.wait_for_deployment(app_name, second)["status"] == "succeeded"
        wait_until(lambda: "v2" in loop.bodies, timeout=10, what="v2 seen by the loop")
        served = loop.ok
        wait_until(lambda: loop.ok >= served + 20, timeout=10, what="more requests after")
    assert loop.failures == [], f"{len(loop.failures)} failed of {loop.ok}: {loop.failures[:5]}"
    assert {"v1", "v2"} <= loop.bodies
    wait_until(lambda: old_container not in containers_of(app_name), timeout=10, what="old gone")
    assert len(containers_of(app_name)) == 1

    history = railyard.deployments(app_name)
    assert [row["revision"] for row in history[:2]] == [second, first], "newest first"


def test_unhealthy_push_keeps_the_old_version_serving(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo, first = register(railyard, tmp_path, app_name, "good")
    assert railyard.wait_for_deployment(app_name, first)["status"] == "succeeded"
    before = containers_of(app_name)

    bad = repo.commit(app_files(app_name, "never served", health="/missing"), "bad health path")
    failed = railyard.wait_for_deployment(app_name, bad)
    assert failed["status"] == "failed"
    assert "did not become healthy" in failed["error"] and "404" in failed["error"]
    assert railyard.edge_text(host) == "good\n"
    assert containers_of(app_name) == before, "the new replica was removed, the old one kept"

    detail = railyard.cli_json("deployment", failed["id"])
    reasons = [event["reason"] for event in detail["events"]]
    assert "failed" in reasons and "rolled_back" in reasons


def test_broken_manifest_is_recorded_and_changes_nothing(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo, first = register(railyard, tmp_path, app_name, "stable")
    assert railyard.wait_for_deployment(app_name, first)["status"] == "succeeded"
    before = containers_of(app_name)

    broken = repo.commit({"paas.yaml": "version: 1\nservices:\n  web:\n    port: eighty\n"}, "oops")
    failed = railyard.wait_for_deployment(app_name, broken)
    assert failed["status"] == "failed"
    assert "services.web" in failed["error"] and "paas.yaml" in failed["error"]
    assert railyard.edge_text(host) == "stable\n"
    assert containers_of(app_name) == before
