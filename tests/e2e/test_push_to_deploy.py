"""The walking skeleton, end to end on real git, Docker and nginx, driven like a user would."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import docker
import httpx
import pytest

from tests.e2e.conftest import EMBEDDED
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
    """Ids of the app's containers, running or not (one listing call: no per-container race)."""
    client = docker.from_env()
    try:
        listed = client.api.containers(all=True, filters={"label": f"railyard.app={app}"})
        return [c["Id"] for c in listed]
    finally:
        client.close()


def assert_succeeded(deployment: dict[str, str]) -> None:
    assert deployment["status"] == "succeeded", f"{deployment['status']}: {deployment.get('error')}"


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
    assert_succeeded(railyard.wait_for_deployment(app_name, first))
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
        assert_succeeded(railyard.wait_for_deployment(app_name, second))
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
    assert_succeeded(railyard.wait_for_deployment(app_name, first))
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
    assert_succeeded(railyard.wait_for_deployment(app_name, first))
    before = containers_of(app_name)

    broken = repo.commit({"paas.yaml": "version: 1\nservices:\n  web:\n    port: eighty\n"}, "oops")
    failed = railyard.wait_for_deployment(app_name, broken)
    assert failed["status"] == "failed"
    assert "services.web" in failed["error"] and "paas.yaml" in failed["error"]
    assert railyard.edge_text(host) == "stable\n"
    assert containers_of(app_name) == before


def test_rollback_returns_to_the_previous_revision_until_the_next_push(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo, first = register(railyard, tmp_path, app_name, "one")
    assert_succeeded(railyard.wait_for_deployment(app_name, first))
    second = repo.commit({"www/index.html": "two\n"}, "two")
    assert_succeeded(railyard.wait_for_deployment(app_name, second))

    assert "rolling" in railyard.cli("rollback", app_name).stdout
    wait_until(lambda: railyard.edge_text(host) == "one\n", timeout=30, what="rolled back")

    def production() -> dict[str, str]:
        environment: dict[str, str] = railyard.cli_json("status", app_name)["environments"][0]
        return environment

    wait_until(lambda: production()["revision"] == first, timeout=30, what="rollback recorded")
    assert production()["pinned_revision"] == first
    rollback = railyard.deployments(app_name)[0]
    assert (rollback["trigger"], rollback["status"]) == ("rollback", "succeeded")

    third = repo.commit({"www/index.html": "three\n"}, "three")
    assert_succeeded(railyard.wait_for_deployment(app_name, third))
    assert railyard.edge_text(host) == "three\n"


def test_signed_webhook_is_queued_once_and_listed(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    repo = GitRepo.create(tmp_path, app_name)
    sha = repo.commit(app_files(app_name, "hooked"), "first")
    created = railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    body = json.dumps(
        {"ref": "refs/heads/main", "before": "0" * 40, "after": sha, "repository": {}}
    ).encode()
    signature = hmac.new(created["webhook_secret"].encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": f"delivery-{sha[:8]}",
        "X-Hub-Signature-256": f"sha256={signature}",
        "Content-Type": "application/json",
    }
    url = f"{railyard.api_url}/webhooks/github/{created['id']}"
    first = httpx.post(url, content=body, headers=headers, timeout=10)
    again = httpx.post(url, content=body, headers=headers, timeout=10)
    forged = httpx.post(url, content=body, headers={**headers, "X-Hub-Signature-256": "sha256=0"})
    assert (first.status_code, first.json()["outcome"]) == (202, "queued")
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert forged.status_code == 401
    assert_succeeded(railyard.wait_for_deployment(app_name, sha))
    outcomes = [row["outcome"] for row in railyard.cli_json("deliveries", app_name)]
    assert outcomes.count("queued") == 1 and any(o.startswith("rejected") for o in outcomes)


def test_a_container_killed_by_hand_is_replaced_by_the_resync(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    _, first = register(railyard, tmp_path, app_name, "resilient")
    assert_succeeded(railyard.wait_for_deployment(app_name, first))
    client = docker.from_env()
    try:
        [victim] = client.containers.list(filters={"label": f"railyard.app={app_name}"})
        victim.kill()
    finally:
        client.close()
    wait_until(
        lambda: (
            railyard.edge_text(host) == "resilient\n" and victim.id not in containers_of(app_name)
        ),
        timeout=30,
        what="the resync to replace the killed container",
    )
    drift = [row for row in railyard.deployments(app_name) if row["trigger"] == "drift"]
    assert drift and drift[0]["status"] == "succeeded"


def test_ten_consecutive_deploys_of_two_replicas_fail_no_request(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo = GitRepo.create(tmp_path, app_name)
    files = app_files(app_name, "r0")
    files["paas.yaml"] = str(files["paas.yaml"]).replace(
        "port: 8080", "port: 8080\n    replicas: 2"
    )
    first = repo.commit(files, "r0")
    railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    assert_succeeded(railyard.wait_for_deployment(app_name, first))
    with RequestLoop(railyard, host, max_requests=200_000, max_seconds=240) as loop:
        wait_until(lambda: loop.ok >= 20, timeout=10, what="the request loop to start")
        for number in range(1, 11):
            revision = repo.commit({"www/index.html": f"r{number}\n"}, f"r{number}")
            assert_succeeded(railyard.wait_for_deployment(app_name, revision))
            wait_until(lambda n=number: f"r{n}" in loop.bodies, timeout=10, what=f"r{number}")
    assert loop.failures == [], f"{len(loop.failures)} failed of {loop.ok}: {loop.failures[:5]}"
    assert {f"r{n}" for n in range(11)} <= loop.bodies
    assert len(containers_of(app_name)) == 2


def test_the_human_readable_commands_work(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    _, first = register(railyard, tmp_path, app_name, "readable")
    deployment = railyard.wait_for_deployment(app_name, first)
    assert_succeeded(deployment)
    status = railyard.cli("status", app_name).stdout
    assert "production" in status and "running" in status and f"{app_name}.localhost" in status
    assert app_name in railyard.cli("apps", "list").stdout
    assert "succeeded" in railyard.cli("deployments", app_name).stdout
    detail = railyard.cli("deployment", deployment["id"][:8]).stdout
    assert "route_switched" in detail
    assert "build_output" in detail and "Step 1/" in detail
    assert "no changes" in railyard.cli("plan", app_name).stdout
    assert railyard.cli("logs", app_name, "--tail", "5").returncode == 0
    missing = railyard.cli("status", "no-such-app", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout


@pytest.mark.backends(EMBEDDED)  # a CLI view: the backend does not change it
def test_deploy_follow_shows_each_step_live_then_says_when_there_is_nothing_to_do(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    repo, first = register(railyard, tmp_path, app_name, "before")
    assert_succeeded(railyard.wait_for_deployment(app_name, first))
    # A release that takes two seconds: whoever starts this deployment (the poller or the
    # command), it is still running when `deploy --follow` looks, and is followed.
    slow = manifest(app_name).replace("port: 8080", 'port: 8080\n    release: ["sleep", "2"]')
    repo.commit({"paas.yaml": slow, "www/index.html": "followed\n"}, "slow release")

    shown = railyard.cli("deploy", app_name, "--follow").stdout
    steps = [line.split()[1] for line in shown.splitlines() if line.startswith("  ")]
    assert {"step_started", "release_output", "healthy", "route_switched"} <= set(steps), shown
    assert shown.rstrip().endswith("succeeded"), shown
    assert railyard.edge_text(f"{app_name}.localhost") == "followed\n"

    again = railyard.cli("deploy", app_name, "--follow").stdout
    assert again.startswith(f"nothing to deploy: {app_name} already runs"), again
