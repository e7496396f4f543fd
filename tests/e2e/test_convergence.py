"""Convergence on real Docker and nginx: image pruning, superseded pushes, and drift found
by the periodic resync (self_heal off and on, a hand-edited route file, a stray container).

The end-to-end environment polls every second and resyncs every five (tests/e2e/harness.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import uuid
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest

from tests.e2e.conftest import EMBEDDED
from tests.e2e.harness import Railyard, RequestLoop
from tests.e2e.test_push_to_deploy import app_files, assert_succeeded, containers_of
from tests.gitrepo import GitRepo
from tests.support import wait_until

TENANT = "default"
KEPT_IMAGES = 5


def events_of(railyard: Railyard, deployment_id: str) -> list[tuple[str, str]]:
    detail = railyard.cli_json("deployment", deployment_id)
    return [(event["reason"], event["message"]) for event in detail["events"]]


def planned(railyard: Railyard, deployment_id: str) -> str:
    """The plan the deployment recorded before executing it ("" if it recorded none)."""
    return "\n".join(m for r, m in events_of(railyard, deployment_id) if r == "planned")


def images_of(app: str) -> set[str]:
    """Tags Railyard built for ``app`` that are still in the Docker engine."""
    prefix = f"railyard/{TENANT}-{app}-"
    client = docker.from_env()
    try:
        found = client.images.list(filters={"reference": f"railyard/*-{app}-*"})
        return {tag for image in found for tag in image.tags if tag.startswith(prefix)}
    finally:
        client.close()


def image_served_by(app: str) -> str:
    client = docker.from_env()
    try:
        [container] = client.api.containers(filters={"label": f"railyard.app={app}"})
        return str(container["Image"])
    finally:
        client.close()


def production(railyard: Railyard, app: str) -> dict[str, Any]:
    environment: dict[str, Any] = railyard.cli_json("status", app)["environments"][0]
    return environment


def resync_outcomes(railyard: Railyard, environment_id: str, outcome: str) -> int:
    """How many resyncs of the environment ended with ``outcome``, per the controller's logs."""
    line = f"reconcile {environment_id[:8]} (resync): {outcome}"
    return sum(path.read_text(errors="replace").count(line) for path in railyard.home.glob("*.log"))


def deploy_first(railyard: Railyard, app: str, tmp_path: Path, body: str) -> GitRepo:
    repo = GitRepo.create(tmp_path, app)
    first = repo.commit(app_files(app, body), "first")
    railyard.cli_json("apps", "add", app, "--repo", repo.url)
    assert_succeeded(railyard.wait_for_deployment(app, first))
    wait_until(lambda: railyard.edge_text(f"{app}.localhost") == f"{body}\n", timeout=10)
    return repo


@pytest.mark.backends(EMBEDDED)  # image pruning does not depend on the backend
def test_images_of_the_last_five_deployments_are_kept_and_a_rollback_reuses_one(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo = GitRepo.create(tmp_path, app_name)
    revision = repo.commit(app_files(app_name, "r1"), "r1")
    railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    deployments: list[dict[str, Any]] = []
    built: list[str] = []
    for number in range(1, 8):
        if number > 1:
            revision = repo.commit({"www/index.html": f"r{number}\n"}, f"r{number}")
        deployment = railyard.wait_for_deployment(app_name, revision)
        assert_succeeded(deployment)
        wait_until(lambda n=number: railyard.edge_text(host) == f"r{n}\n", timeout=10)
        deployments.append(deployment)
        built.append(image_served_by(app_name))
    assert len(set(built)) == 7, "each commit changes the build context, so the image tag"
    assert railyard.edge_text(host) == "r7\n"

    # Pruning runs after each successful deployment, once its record is final.
    wait_until(
        lambda: images_of(app_name) == set(built[-KEPT_IMAGES:]),
        timeout=30,
        interval=0.5,
        what=f"images of r3..r7 only (have {sorted(images_of(app_name))})",
    )

    # Back to r4, whose image was kept: nothing is built.
    railyard.cli("rollback", app_name, "--to", deployments[3]["id"])

    def rolled_back() -> dict[str, Any] | None:
        latest = railyard.deployments(app_name)[0]
        done = latest["trigger"] == "rollback" and latest["status"] not in ("pending", "running")
        return latest if done else None

    rollback = wait_until(rolled_back, timeout=60, interval=0.3, what="the rollback to r4")
    assert_succeeded(rollback)
    assert rollback["revision"] == deployments[3]["revision"]
    assert railyard.edge_text(host) == "r4\n"
    reasons = [reason for reason, _ in events_of(railyard, rollback["id"])]
    assert "build image" not in planned(railyard, rollback["id"])
    assert "build_output" not in reasons
    assert image_served_by(app_name) == built[3]
    # The last five successful deployments now ran r4 (the rollback), r7, r6, r5 and r4.
    wait_until(
        lambda: images_of(app_name) == set(built[3:]),
        timeout=30,
        interval=0.5,
        what=f"images of r4..r7 only (have {sorted(images_of(app_name))})",
    )


def slow_release_files(app: str, body: str) -> dict[str, str | None]:
    files = app_files(app, body)
    files["paas.yaml"] = str(files["paas.yaml"]).replace(
        "port: 8080", 'port: 8080\n    release: ["sleep", "8"]'
    )
    return files


def test_pushes_queued_behind_a_running_deployment_are_superseded_by_the_last(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    repo = GitRepo.create(tmp_path, app_name)
    base = repo.commit(slow_release_files(app_name, "base"), "base")
    railyard.cli_json("apps", "add", app_name, "--repo", repo.url)
    assert_succeeded(railyard.wait_for_deployment(app_name, base))

    def status_of(revision: str) -> str | None:
        rows = [row for row in railyard.deployments(app_name) if row["revision"] == revision]
        return rows[0]["status"] if rows else None

    a = repo.commit({"www/index.html": "A\n"}, "A")
    wait_until(lambda: status_of(a) == "running", timeout=30, interval=0.2, what="A running")
    queued = []
    for name in ("B", "C", "D"):
        revision = repo.commit({"www/index.html": f"{name}\n"}, name)
        # Each push is noticed by the poller (every second) before the next one.
        wait_until(
            lambda r=revision: status_of(r) == "pending",
            timeout=10,
            interval=0.2,
            what=f"{name} noted as pending",
        )
        queued.append(revision)
    b, c, d = queued
    assert status_of(a) == "running", "A finished too soon: the pushes did not queue behind it"

    assert_succeeded(railyard.wait_for_deployment(app_name, d, timeout=120))
    assert railyard.edge_text(host) == "D\n"
    rows = railyard.deployments(app_name)
    by_revision: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_revision.setdefault(row["revision"], []).append(row)
    assert [row["status"] for row in by_revision[a]] == ["succeeded"]
    for revision in (b, c):
        [row] = by_revision[revision]
        assert row["status"] == "superseded", row
        assert row["error"] == f"superseded by revision {d[:12]}"
        assert ("superseded", f"a newer revision {d[:12]} was deployed") in events_of(
            railyard, row["id"]
        )
    assert [row["status"] for row in by_revision[d]] == ["succeeded"], "D deployed once"
    assert not [row for row in rows if row["status"] in ("pending", "running")]
    assert production(railyard, app_name)["revision"] == d


@pytest.mark.backends(EMBEDDED)  # neither does drift reporting
def test_with_self_heal_off_drift_is_reported_once_and_repaired_when_turned_back_on(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    deploy_first(railyard, app_name, tmp_path, "healing")
    assert "self_heal False" in railyard.cli("apps", "set", app_name, "--no-self-heal").stdout
    environment_id = production(railyard, app_name)["id"]
    client = docker.from_env()
    try:
        [victim] = client.api.containers(filters={"label": f"railyard.app={app_name}"})
        client.api.remove_container(victim["Id"], force=True)
    finally:
        client.close()

    def reports() -> list[dict[str, Any]]:
        return [row for row in railyard.deployments(app_name) if row["status"] == "drifted"]

    def drift_of(report: dict[str, Any]) -> str:
        return "\n".join(m for r, m in events_of(railyard, report["id"]) if r == "drift_detected")

    def replica_gone_reported() -> dict[str, Any] | None:
        # A resync that looked while the container was going may first report it unhealthy
        # (a different drift, so a report of its own); then the replica is simply gone.
        found = reports()
        if not found or re.search(r"^\d+\. remove ", drift_of(found[0]), re.MULTILINE):
            return None
        return found[0]

    report = wait_until(replica_gone_reported, timeout=30, interval=0.5, what="drift reported")
    assert report["trigger"] == "drift"
    message = drift_of(report)
    assert "self_heal is off; not repairing" in message and "start web replica" in message
    environment = production(railyard, app_name)
    assert environment["latest_deployment"]["status"] == "drifted"
    assert environment["services"] == [] or environment["services"][0]["running"] == 0
    assert "last deployment: drifted" in railyard.cli("status", app_name).stdout

    # Two more resyncs find the same drift: nothing new is recorded, nothing is started.
    reported = len(reports())
    repeats = resync_outcomes(railyard, environment_id, "drifted drift already reported")
    wait_until(
        lambda: (
            resync_outcomes(railyard, environment_id, "drifted drift already reported")
            >= repeats + 2
        ),
        timeout=30,
        interval=0.5,
        what="two more resyncs of the drifted environment",
    )
    assert len(reports()) == reported, "the same drift is reported once"
    assert reports()[0]["id"] == report["id"]
    assert containers_of(app_name) == [], "self_heal off: no replacement"
    assert railyard.edge_text(host) is None

    railyard.cli("apps", "set", app_name, "--self-heal")
    wait_until(
        lambda: railyard.edge_text(host) == "healing\n",
        timeout=30,
        interval=0.5,
        what="the resync to repair the drift once self_heal is on",
    )
    repair = railyard.deployments(app_name)[0]
    assert (repair["trigger"], repair["status"]) == ("drift", "succeeded")
    assert "drift_repaired" in [r for r, _ in events_of(railyard, repair["id"])]
    assert len(containers_of(app_name)) == 1
    assert len(reports()) == reported


def route_file(railyard: Railyard, app: str) -> Path:
    instance = (railyard.home / "instance").read_text().strip()
    return railyard.home / "nginx" / "conf.d" / f"{instance}-{TENANT}-{app}-production.conf"


@pytest.mark.backends(EMBEDDED)  # nor route repair
def test_a_hand_edited_route_file_is_rewritten_by_the_resync(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    deploy_first(railyard, app_name, tmp_path, "routed")
    path = route_file(railyard, app_name)
    original = path.read_text()
    edited, count = re.subn(
        r"proxy_pass http://[^;]+;", 'return 503 "edited by hand\\n";', original
    )
    assert count == 1, original
    temporary = path.with_name(f".{path.name}.by-hand.tmp")
    temporary.write_text(edited)
    os.replace(temporary, path)
    # nginx serves what it loaded: reload it, as someone editing its config would.
    os.kill(int((railyard.home / "nginx" / "nginx.pid").read_text()), signal.SIGHUP)

    def drift_repairs() -> list[dict[str, Any]]:
        return [row for row in railyard.deployments(app_name) if row["trigger"] == "drift"]

    def edited_or_repaired() -> bool:
        try:
            response = railyard.edge(host)
        except httpx.HTTPError:
            return False
        return response.text == "edited by hand\n" or bool(drift_repairs())

    wait_until(edited_or_repaired, timeout=15, interval=0.1, what="the hand edit to take effect")
    wait_until(
        lambda: railyard.edge_text(host) == "routed\n" and drift_repairs(),
        timeout=30,
        interval=0.5,
        what="the resync to restore the route",
    )
    [repair] = drift_repairs()
    assert_succeeded(repair)
    events = events_of(railyard, repair["id"])
    assert f"switch routes: {host}/ -> web" in planned(railyard, repair["id"])
    assert "drift_repaired" in [r for r, _ in events]
    assert "edited by hand" not in path.read_text()
    assert [r["host"] for r in production(railyard, app_name)["routes"]] == [host]


@pytest.mark.backends(EMBEDDED)  # nor container repair
def test_a_stray_container_with_the_apps_labels_is_removed_while_the_app_serves(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    deploy_first(railyard, app_name, tmp_path, "owned")
    [replica] = containers_of(app_name)
    stray_name = f"{app_name}-stray-{uuid.uuid4().hex[:6]}"
    client = docker.from_env()
    try:
        labels = client.containers.get(replica).labels
        labels = {k: v for k, v in labels.items() if k.startswith("railyard.")}
        labels["railyard.spec-hash"] = "0" * 16
        with RequestLoop(railyard, host) as loop:
            wait_until(lambda: loop.ok >= 20, timeout=10, what="the request loop to start")
            stray = client.containers.run(
                "busybox:stable",
                ["sleep", "3600"],
                name=stray_name,
                labels=labels,
                detach=True,
                network_mode="none",
            )
            stray_id = str(stray.id)
            wait_until(
                lambda: stray_id not in containers_of(app_name),
                timeout=30,
                interval=0.5,
                what="the resync to remove the stray container",
            )
            served = loop.ok
            wait_until(lambda: loop.ok >= served + 20, timeout=10, what="more requests after")
        assert loop.failures == [], f"{len(loop.failures)} failed: {loop.failures[:5]}"
        assert loop.bodies == {"owned"}
        assert containers_of(app_name) == [replica], "the real replica was kept"
        repair = wait_until(
            lambda: next(
                (
                    row
                    for row in railyard.deployments(app_name)
                    if row["trigger"] == "drift" and row["status"] != "running"
                ),
                None,
            ),
            timeout=10,
            what="the drift repair to be recorded",
        )
        assert_succeeded(repair)
        plan = planned(railyard, repair["id"])
        assert f"remove {stray_name} (replaced by spec" in plan
        assert "drift_repaired" in [r for r, _ in events_of(railyard, repair["id"])]
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(stray_name, force=True)
        client.close()
