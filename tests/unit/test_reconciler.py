"""The reconciler on fakes and a real SQLite database: what it records, and what it never does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.executor import Executor
from controller.health import StaticProber
from controller.locks import InProcessLocks, merged_trigger
from controller.reconciler import Reconciler
from controller.records import note_pending
from controller.router.fake import FakeRouter
from controller.runtime.fake import FakeRuntime
from controller.source.fake import FakeSource
from controller.state import EnvironmentKey
from controller.store.crypto import SecretBox
from controller.store.db import Database, migrate
from controller.store.deployments import DeploymentRepository
from controller.store.domains import DomainRepository
from controller.store.models import Deployment, DeploymentStatus, Environment
from controller.store.repositories import AppRepository, EnvironmentRepository, TenantRepository
from controller.store.secrets import SecretRepository

REPO = "https://git.example/acme/shop.git"
BOX = SecretBox("reconciler-test-key-" + "k" * 32)
KEY = EnvironmentKey("acme", "shop", "production")


def manifest(image: str = "shop:v1", health: str = "/healthz") -> str:
    return f"""version: 1
services:
  web:
    image: {image}
    port: 8080
    healthcheck: {{path: {health}}}
    routes: [{{host: shop.localhost}}]
"""


@dataclass
class World:
    db: Database
    runtime: FakeRuntime
    router: FakeRouter
    source: FakeSource
    prober: StaticProber
    reconciler: Reconciler
    environment_id: str

    async def deployments(self) -> list[Deployment]:
        async with self.db.session() as session:
            return await DeploymentRepository(session, None).list_for_environment(
                self.environment_id
            )

    async def environment(self) -> Environment:
        async with self.db.session() as session:
            return await EnvironmentRepository(session, None).get_or_raise(self.environment_id)

    async def events(self, deployment: Deployment) -> list[str]:
        async with self.db.session() as session:
            rows = await DeploymentRepository(session, None).events(deployment.id)
        return [row.reason for row in rows]

    async def reconcile(self, trigger: str = "push") -> str:
        outcome = await self.reconciler.reconcile(self.environment_id, trigger=trigger)
        return outcome.status


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'railyard.db'}"
    await migrate(url)
    db = Database(url)
    async with db.session() as session:
        tenant = await TenantRepository(session, None).create("acme")
        app = await AppRepository(session, tenant.id).create(
            "shop", REPO, webhook_secret_encrypted="x"
        )
        environment = await EnvironmentRepository(session, tenant.id).get_by_name(
            app.id, "production"
        )
    assert environment is not None
    runtime = FakeRuntime(images=["shop:v1", "shop:v2"])
    router, source, prober = FakeRouter(), FakeSource(), StaticProber()

    async def no_wait(seconds: float) -> None:
        return None

    executor = Executor(runtime, router, source, prober, health_timeout=0.0, sleep=no_wait)
    reconciler = Reconciler(
        database=db,
        runtime=runtime,
        router=router,
        source=source,
        executor=executor,
        locks=InProcessLocks(),
        secret_box=BOX,
    )
    yield World(db, runtime, router, source, prober, reconciler, environment.id)
    await db.close()


async def test_first_push_deploys_and_records(world: World) -> None:
    sha = world.source.push(REPO, {"paas.yaml": manifest()})
    assert await world.reconcile() == "succeeded"
    [deployment] = await world.deployments()
    assert (deployment.revision, deployment.status) == (sha, "succeeded")
    assert (await world.environment()).current_revision == sha
    assert len(await world.runtime.list_containers(KEY)) == 1
    reasons = await world.events(deployment)
    assert reasons[:2] == ["worker", "planned"] and "route_switched" in reasons


async def test_a_converged_resync_writes_nothing(world: World) -> None:
    world.source.push(REPO, {"paas.yaml": manifest()})
    await world.reconcile()
    operations, applies = len(world.runtime.operations), len(world.router.applied)
    assert await world.reconcile("resync") == "unchanged"
    assert len(await world.deployments()) == 1
    assert (len(world.runtime.operations), len(world.router.applied)) == (operations, applies)


async def test_invalid_manifest_is_recorded_once_and_touches_nothing(world: World) -> None:
    world.source.push(REPO, {"paas.yaml": manifest()})
    await world.reconcile()
    before = await world.runtime.list_containers(KEY)
    bad = world.source.push(REPO, {"paas.yaml": "version: 1\nservices:\n  web: {port: x}\n"})
    assert await world.reconcile() == "failed"
    assert await world.reconcile("resync") == "unchanged", "keeps the last good revision"
    latest, *_ = await world.deployments()
    assert (latest.revision, latest.status) == (bad, "failed")
    assert latest.error is not None and "services.web" in latest.error
    assert len(await world.deployments()) == 2, "the resync did not record it again"
    assert await world.runtime.list_containers(KEY) == before


async def test_unhealthy_revision_is_not_retried_by_resync(world: World) -> None:
    good = world.source.push(REPO, {"paas.yaml": manifest()})
    await world.reconcile()
    bad = world.source.push(REPO, {"paas.yaml": manifest("shop:v2")})
    world.prober.unhealthy.add(bad)
    assert await world.reconcile() == "failed"
    starts = sum(op.startswith("start") for op in world.runtime.operations)
    assert await world.reconcile("resync") == "unchanged"
    assert sum(op.startswith("start") for op in world.runtime.operations) == starts
    assert (await world.environment()).current_revision == good
    [container] = await world.runtime.list_containers(KEY)
    assert container.revision == good


async def test_intermediate_pushes_are_superseded_by_the_last(world: World) -> None:
    world.source.push(REPO, {"paas.yaml": manifest()})
    await world.reconcile()
    first = world.source.push(REPO, {"README": "1"})
    await note_pending(world.db, world.environment_id, first, "webhook")
    last = world.source.push(REPO, {"paas.yaml": manifest("shop:v2")})
    await note_pending(world.db, world.environment_id, last, "webhook")
    await note_pending(world.db, world.environment_id, last, "poll")  # a duplicate notice
    assert await world.reconcile("webhook") == "succeeded"
    statuses = {d.revision: d.status for d in await world.deployments()}
    assert statuses[first] == "superseded" and statuses[last] == "succeeded"
    assert len(await world.deployments()) == 3


async def test_a_deployment_left_running_by_a_dead_worker_is_marked_interrupted(
    world: World,
) -> None:
    sha = world.source.push(REPO, {"paas.yaml": manifest()})
    async with world.db.session() as session:
        environment = await EnvironmentRepository(session, None).get_or_raise(world.environment_id)
        await DeploymentRepository(session, None).create(
            environment, revision=sha, trigger="push", status=DeploymentStatus.RUNNING
        )
    assert await world.reconcile() == "succeeded"
    statuses = sorted(d.status for d in await world.deployments())
    assert statuses == ["interrupted", "succeeded"]


async def test_drift_is_repaired_and_recorded(world: World) -> None:
    world.source.push(REPO, {"paas.yaml": manifest()})
    await world.reconcile()
    [container] = await world.runtime.list_containers(KEY)
    world.runtime.kill(container.id)
    assert await world.reconcile("resync") == "succeeded"
    latest, *_ = await world.deployments()
    assert latest.trigger == "drift"
    assert "drift_repaired" in await world.events(latest)
    assert [c.running for c in await world.runtime.list_containers(KEY)] == [True]


async def test_deleting_the_app_prunes_its_containers_and_routes(world: World) -> None:
    world.source.push(REPO, {"paas.yaml": manifest()})
    await world.reconcile()
    environment = await world.environment()
    async with world.db.session() as session:
        apps = AppRepository(session, environment.tenant_id)
        await apps.delete(await apps.get_or_raise(environment.app_id))
    removed = await world.reconciler.prune_orphans()
    assert removed
    assert await world.runtime.list_containers() == []
    assert await world.router.environments() == []


async def test_a_replica_that_turns_unhealthy_is_replaced(world: World) -> None:
    world.source.push(REPO, {"paas.yaml": manifest()})
    await world.reconcile()
    [sick] = await world.runtime.list_containers(KEY)
    world.prober.unhealthy.add(sick.id)
    assert await world.reconcile("resync") == "succeeded"
    [replacement] = await world.runtime.list_containers(KEY)
    assert replacement.id != sick.id and replacement.running
    latest, *_ = await world.deployments()
    assert latest.trigger == "drift"


async def test_a_new_revision_failing_right_after_cutover_is_rolled_back(world: World) -> None:
    good = world.source.push(REPO, {"paas.yaml": manifest()})
    await world.reconcile()
    flaky = world.source.push(REPO, {"paas.yaml": manifest("shop:v2")})
    assert await world.reconcile() == "succeeded"
    world.prober.unhealthy.add(flaky)
    assert await world.reconcile("resync") == "succeeded"
    latest, *_ = await world.deployments()
    assert (latest.trigger, latest.revision) == ("auto-rollback", good)
    assert [c.revision for c in await world.runtime.list_containers(KEY)] == [good]
    assert (await world.environment()).pinned_revision == good
    assert await world.reconcile("resync") == "unchanged", "the rollback holds"


async def test_self_heal_off_reports_drift_once_and_repairs_nothing(world: World) -> None:
    world.source.push(REPO, {"paas.yaml": manifest()})
    await world.reconcile()
    environment = await world.environment()
    async with world.db.session() as session:
        apps = AppRepository(session, environment.tenant_id)
        await apps.update(await apps.get_or_raise(environment.app_id), self_heal=False)
    [container] = await world.runtime.list_containers(KEY)
    world.runtime.kill(container.id)
    assert await world.reconcile("resync") == "drifted"
    assert await world.reconcile("resync") == "drifted"
    statuses = [d.status for d in await world.deployments()]
    assert statuses == ["drifted", "succeeded"]
    [still] = await world.runtime.list_containers(KEY)
    assert not still.running


async def test_secrets_are_rendered_and_a_missing_one_is_named_not_shown(world: World) -> None:
    text = manifest().replace(
        "    port: 8080", '    port: 8080\n    env: {TOKEN: "${{ secrets.TOKEN }}"}'
    )
    world.source.push(REPO, {"paas.yaml": text})
    assert await world.reconcile() == "failed"
    [failed] = await world.deployments()
    assert failed.error is not None and "TOKEN" in failed.error
    environment = await world.environment()
    async with world.db.session() as session:
        app = await AppRepository(session, environment.tenant_id).get_or_raise(environment.app_id)
        await SecretRepository(session, environment.tenant_id).set(app, "TOKEN", "hunter2", BOX)
    assert await world.reconcile("redeploy") == "succeeded"
    for deployment in await world.deployments():
        assert "hunter2" not in (deployment.error or "") + deployment.plan_summary


async def test_old_images_are_pruned_beyond_the_last_five_deployments(world: World) -> None:
    built = manifest().replace("image: shop:v1", "build: {context: .}")
    for number in range(7):
        world.source.push(REPO, {"paas.yaml": built, "Dockerfile": f"FROM scratch\n# {number}\n"})
        assert await world.reconcile() == "succeeded"
    ours = {image for image in world.runtime.images if image.startswith("railyard/")}
    assert len(world.runtime.built) == 7
    assert ours == set(world.runtime.built[-5:])


async def test_a_no_changes_deployment_keeps_the_image_it_runs(world: World) -> None:
    built = manifest().replace("image: shop:v1", "build: {context: web}")
    world.source.push(REPO, {"paas.yaml": built, "web/Dockerfile": "FROM scratch\n"})
    assert await world.reconcile() == "succeeded"
    [first_image] = world.runtime.built
    world.source.push(REPO, {"README": "outside the build context"})
    assert await world.reconcile() == "succeeded"
    assert len(world.runtime.built) == 1, "nothing to build: no changes"
    for number in range(4):
        world.source.push(REPO, {"web/Dockerfile": f"FROM scratch\n# {number}\n"})
        assert await world.reconcile() == "succeeded"
    # The last five successful deployments: four builds and the no-changes one, which ran
    # the first image: that image stays for a rollback.
    assert first_image in world.runtime.images


async def test_pruning_an_app_keeps_the_images_of_an_app_named_after_it(world: World) -> None:
    built = manifest().replace("image: shop:v1", "build: {context: .}")
    other_repo = "https://git.example/acme/shop-api.git"
    async with world.db.session() as session:
        tenant = await TenantRepository(session, None).get_by_name("acme")
        assert tenant is not None
        other = await AppRepository(session, tenant.id).create(
            "shop-api", other_repo, webhook_secret_encrypted="x"
        )
        environment = await EnvironmentRepository(session, tenant.id).get_by_name(
            other.id, "production"
        )
    assert environment is not None
    for number in range(2):
        api = built.replace("shop.localhost", "api.shop.localhost")
        world.source.push(other_repo, {"paas.yaml": api, "Dockerfile": f"# api {number}\n"})
        outcome = await world.reconciler.reconcile(environment.id, trigger="push")
        assert outcome.status == "succeeded"
    api_images = list(world.runtime.built)
    world.source.push(REPO, {"paas.yaml": built, "Dockerfile": "# shop\n"})
    assert await world.reconcile() == "succeeded"
    # "acme-shop-" is a prefix of shop-api's image names too: its rollback image stays.
    assert set(api_images) <= world.runtime.images


async def rolled_back_to_the_first_of_two(world: World) -> str:
    """Two revisions deployed, then the environment pinned to the first (a rollback asked
    for, its reconcile not run yet)."""
    first = world.source.push(REPO, {"paas.yaml": manifest()})
    await world.reconcile()
    world.source.push(REPO, {"paas.yaml": manifest("shop:v2")})
    await world.reconcile()
    environment = await world.environment()
    async with world.db.session() as session:
        await EnvironmentRepository(session, None).update(environment, pinned_revision=first)
    return first


async def test_a_held_rollback_does_not_supersede_a_waiting_push(world: World) -> None:
    await rolled_back_to_the_first_of_two(world)
    environment = await world.environment()
    assert await world.reconcile("rollback") == "succeeded"
    newest = world.source.push(REPO, {"paas.yaml": manifest("shop:v2"), "README": "3"})
    # The poller has seen the push (and recorded it) but its reconcile has not run yet.
    async with world.db.session() as session:
        apps = AppRepository(session, environment.tenant_id)
        await apps.update(await apps.get_or_raise(environment.app_id), last_seen_revision=newest)
    await note_pending(world.db, world.environment_id, newest, "poll")
    assert await world.reconcile("resync") == "unchanged", "holds the rollback"
    statuses = {d.revision: d.status for d in await world.deployments()}
    assert statuses[newest] == "pending"
    assert await world.reconcile("poll") == "succeeded"
    statuses = {d.revision: d.status for d in await world.deployments()}
    assert statuses[newest] == "succeeded"


async def test_a_rollback_carried_out_by_a_resync_is_recorded_as_a_rollback(
    world: World,
) -> None:
    """With several workers the periodic resync may reach a rollback before its message."""
    first = await rolled_back_to_the_first_of_two(world)
    assert await world.reconcile("resync") == "succeeded"
    latest = (await world.deployments())[0]
    assert (latest.revision, latest.trigger) == (first, "rollback")


async def test_a_push_first_seen_by_the_resync_still_ends_a_rollback(world: World) -> None:
    await rolled_back_to_the_first_of_two(world)
    assert await world.reconcile("rollback") == "succeeded"
    assert await world.reconcile("resync") == "unchanged", "the rollback holds"
    newest = world.source.push(REPO, {"paas.yaml": manifest("shop:v2"), "README": "3"})
    # No webhook, and the resync reads the branch before the poller does.
    assert await world.reconcile("resync") == "succeeded"
    assert (await world.environment()).current_revision == newest
    assert (await world.environment()).pinned_revision is None


async def test_a_host_outside_the_tenants_domains_fails_until_the_domain_is_added(
    world: World,
) -> None:
    foreign = manifest().replace("shop.localhost", "shop.example.com")
    world.source.push(REPO, {"paas.yaml": foreign})
    assert await world.reconcile() == "failed"
    [failed] = await world.deployments()
    assert failed.error is not None and "shop.example.com" in failed.error
    assert await world.runtime.list_containers(KEY) == []
    environment = await world.environment()
    async with world.db.session() as session:
        await DomainRepository(session, environment.tenant_id).add("example.com")
    assert await world.reconcile("redeploy") == "succeeded"


async def test_a_push_noticed_by_two_triggers_at_once_is_one_pending_deployment(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook and the poller both looked before either wrote (the race, held open):
    the store keeps one pending record per revision, and the second notice adds nothing."""

    async def nothing_recorded_yet(self: DeploymentRepository, environment_id: str) -> list[Any]:
        return []

    sha = world.source.push(REPO, {"paas.yaml": manifest()})
    monkeypatch.setattr(DeploymentRepository, "unfinished", nothing_recorded_yet)
    await note_pending(world.db, world.environment_id, sha, "webhook")
    await note_pending(world.db, world.environment_id, sha, "poll")
    monkeypatch.undo()
    assert [(d.status, d.trigger) for d in await world.deployments()] == [("pending", "webhook")]
    assert await world.reconcile("webhook") == "succeeded"
    assert [d.status for d in await world.deployments()] == ["succeeded"]


async def test_reconciles_of_a_busy_environment_leave_a_request_instead_of_waiting(
    world: World,
) -> None:
    """Five triggers at once: one reconciles, the others return at once ("queued"), and
    the one running reconciles once more when it ends; nothing runs twice at a time."""
    world.source.push(REPO, {"paas.yaml": manifest()})
    outcomes = await asyncio.gather(
        *(world.reconciler.reconcile(world.environment_id, trigger=t) for t in ["push"] * 5)
    )
    statuses = sorted(outcome.status for outcome in outcomes)
    assert statuses == ["queued", "queued", "queued", "queued", "unchanged"], statuses
    assert [d.status for d in await world.deployments()] == ["succeeded"]
    assert await world.reconciler.locks.take_request(f"env:{world.environment_id}") is None


async def test_a_request_keeps_the_strongest_trigger() -> None:
    locks = InProcessLocks()
    await locks.request("env:1", "redeploy")
    await locks.request("env:1", "resync")
    assert await locks.take_request("env:1") == "redeploy", "a resync asks for less"
    assert await locks.take_request("env:1") is None
    assert merged_trigger("resync", "redeploy") == "redeploy"
    assert merged_trigger("push", "resync") == "push"
    assert merged_trigger("resync", None) == "resync"
