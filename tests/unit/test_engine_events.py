"""Engine events: a replica that dies asks for one early reconcile of its environment,
recorded as a resync would record it; everything else is left to the resync."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from controller.engine_events import REASON, EngineEvents, reconnect_delay, spacing
from controller.executor import Executor
from controller.health import StaticProber
from controller.locks import InProcessLocks
from controller.reconciler import Reconciler
from controller.router.fake import FakeRouter
from controller.runtime.base import ContainerExit
from controller.runtime.docker_events import event_filters, exit_of
from controller.runtime.fake import FakeRuntime
from controller.source.fake import FakeSource
from controller.state import DesiredService, EnvironmentKey
from controller.store.db import Database
from controller.store.deployments import DeploymentRepository
from controller.store.models import Deployment
from controller.store.repositories import AppRepository, EnvironmentRepository, TenantRepository
from tests.support import async_wait_until

INSTANCE = "ry0test"
REPO = "https://git.example/acme/shop.git"
SHOP = EnvironmentKey("acme", "shop", "production", INSTANCE)
WEB = DesiredService(name="web", image="shop:v1", port=8080)
MANIFEST = """version: 1
services:
  web:
    image: shop:v1
    port: 8080
    healthcheck: {path: /healthz}
    routes: [{host: shop.localhost}]
"""


class RecordingQueue:
    def __init__(self) -> None:
        self.enqueued: list[tuple[str, str]] = []

    async def enqueue(self, environment_id: str, *, reason: str) -> None:
        self.enqueued.append((environment_id, reason))


@dataclass
class Watch:
    db: Database
    runtime: FakeRuntime
    queue: RecordingQueue
    events: EngineEvents
    shop_id: str

    async def settled(self, enqueued: int) -> bool:
        """``enqueued`` reconciles asked for, and no hint left waiting."""
        return len(self.queue.enqueued) >= enqueued and not self.events.pending


async def production_id(db: Database, tenant: str, app: str) -> str:
    async with db.session() as session:
        owner = await TenantRepository(session, None).get_by_name(tenant)
        assert owner is not None
        found = await AppRepository(session, owner.id).get_by_name_or_raise(app)
        environment = await EnvironmentRepository(session, None).get_by_name(found.id, "production")
    assert environment is not None
    return environment.id


@pytest.fixture
async def db(db: Database) -> Database:
    """Tenant acme with a deployed app ``shop`` and a never deployed app ``fresh``."""
    database = db
    async with database.session() as session:
        tenant = await TenantRepository(session, None).create("acme")
        for name in ("shop", "fresh"):
            await AppRepository(session, tenant.id).create(name, REPO, webhook_secret_encrypted="x")
    shop_id = await production_id(database, "acme", "shop")
    async with database.session() as session:
        environments = EnvironmentRepository(session, None)
        await environments.update(await environments.get_or_raise(shop_id), current_revision="c0")
    return database


@pytest.fixture
async def watch(db: Database) -> AsyncIterator[Watch]:
    runtime, queue = FakeRuntime(images=[WEB.image]), RecordingQueue()
    events = EngineEvents(
        db,
        runtime,
        queue,
        instance=INSTANCE,
        debounce_seconds=0.1,
        reconnect_min_seconds=0.01,
        reconnect_max_seconds=0.05,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(events.run(stop))
    await async_wait_until(lambda: _true(runtime.watching == 1), timeout=5, what="watching")
    yield Watch(db, runtime, queue, events, await production_id(db, "acme", "shop"))
    stop.set()
    async with asyncio.timeout(5):
        await running
    assert runtime.watching == 0, "stopping closed the engine's stream"


async def _true(value: bool) -> bool:
    return value


async def test_a_killed_replica_enqueues_one_resync_of_its_environment(watch: Watch) -> None:
    replica = await watch.runtime.start_container(SHOP, WEB, "c0", 0)

    watch.runtime.kill(replica.id)

    await async_wait_until(lambda: watch.settled(1), timeout=5, what="the hint to be sent")
    assert watch.queue.enqueued == [(watch.shop_id, "resync")]


async def test_exits_within_the_debounce_window_enqueue_one_reconcile(watch: Watch) -> None:
    replicas = [await watch.runtime.start_container(SHOP, WEB, "c0", n) for n in range(3)]

    for replica in replicas:  # a deploy removing the three old replicas
        await watch.runtime.remove_container(replica.id)

    await async_wait_until(lambda: watch.settled(1), timeout=5, what="the hint to be sent")
    assert watch.queue.enqueued == [(watch.shop_id, REASON)]


async def test_foreign_unknown_never_deployed_and_task_containers_enqueue_nothing(
    watch: Watch,
) -> None:
    deleted_app = EnvironmentKey("acme", "gone", "production", INSTANCE)
    never_deployed = EnvironmentKey("acme", "fresh", "production", INSTANCE)
    other_installation = EnvironmentKey("acme", "shop", "production", "ry0other")
    for key in (deleted_app, never_deployed, other_installation):
        watch.runtime.kill((await watch.runtime.start_container(key, WEB, "c0", 0)).id)
    await watch.runtime.run_task(SHOP, WEB, ("migrate",), "c0", timeout=5)

    # A known environment's exit, noticed after all of those, is the only one enqueued.
    watch.runtime.kill((await watch.runtime.start_container(SHOP, WEB, "c0", 0)).id)
    await async_wait_until(lambda: watch.settled(1), timeout=5, what="the hint to be sent")
    assert watch.queue.enqueued == [(watch.shop_id, REASON)]


async def test_a_lost_engine_is_watched_again_with_one_warning_line_per_attempt(
    watch: Watch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="controller.engine_events")
    watch.runtime.unavailable = True
    watch.runtime.end_watches()

    def warned() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "watching again" in r.getMessage()]

    await async_wait_until(lambda: _true(len(warned()) >= 2), timeout=5, what="retries")
    watch.runtime.unavailable = False
    await async_wait_until(lambda: _true(watch.runtime.watching == 1), timeout=5, what="back")
    watch.runtime.kill((await watch.runtime.start_container(SHOP, WEB, "c0", 0)).id)

    await async_wait_until(lambda: watch.settled(1), timeout=5, what="the hint to be sent")
    assert watch.queue.enqueued == [(watch.shop_id, REASON)]
    assert all(r.exc_info is None and "unreachable" in r.getMessage() for r in warned())


# -- the reconcile it asks for is the resync's ------------------------------------------


@dataclass
class Repairing:
    """Engine events asking a real reconciler (on fakes) to reconcile, as the worker does."""

    runtime: FakeRuntime
    reconciler: Reconciler
    environment_id: str
    enqueued: int = 0

    async def enqueue(self, environment_id: str, *, reason: str) -> None:
        self.enqueued += 1
        await self.reconciler.reconcile(environment_id, trigger=reason)


@pytest.fixture
async def repairing(db: Database) -> AsyncIterator[Repairing]:
    runtime, router, source = FakeRuntime(images=[WEB.image]), FakeRouter(), FakeSource()

    async def no_wait(seconds: float) -> None:
        return None

    reconciler = Reconciler(
        database=db,
        runtime=runtime,
        router=router,
        source=source,
        executor=Executor(
            runtime, router, source, StaticProber(), health_timeout=0.0, sleep=no_wait
        ),
        locks=InProcessLocks(),
        instance=INSTANCE,
    )
    queue = Repairing(runtime, reconciler, await production_id(db, "acme", "shop"))
    source.push(REPO, {"paas.yaml": MANIFEST})
    assert (await reconciler.reconcile(queue.environment_id, trigger="push")).status == "succeeded"
    events = EngineEvents(db, runtime, queue, instance=INSTANCE, debounce_seconds=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(events.run(stop))
    await async_wait_until(lambda: _true(runtime.watching == 1), timeout=5, what="watching")
    yield queue
    await async_wait_until(lambda: _true(not events.pending), timeout=5, what="hints handled")
    stop.set()
    async with asyncio.timeout(5):
        await running


async def deployments(db: Database, environment_id: str) -> list[Deployment]:
    async with db.session() as session:
        return await DeploymentRepository(session, None).list_for_environment(environment_id)


async def test_a_killed_replica_is_repaired_and_recorded_as_drift(
    db: Database, repairing: Repairing
) -> None:
    [replica] = await repairing.runtime.list_containers(SHOP)

    repairing.runtime.kill(replica.id)

    async def repaired() -> list[Deployment]:
        rows = await deployments(db, repairing.environment_id)
        return [d for d in rows if d.trigger == "drift" and d.status != "running"]

    [repair] = await async_wait_until(repaired, timeout=5, what="the drift to be repaired")
    assert repair.status == "succeeded"
    [replacement] = await repairing.runtime.list_containers(SHOP)
    assert replacement.running and replacement.id != replica.id


async def test_with_self_heal_off_a_killed_replica_is_only_reported(
    db: Database, repairing: Repairing
) -> None:
    async with db.session() as session:
        apps = AppRepository(session, None)
        [shop] = [app for app in await apps.list() if app.name == "shop"]
        await apps.update(shop, self_heal=False)
    [replica] = await repairing.runtime.list_containers(SHOP)

    repairing.runtime.kill(replica.id)

    async def statuses() -> list[str]:
        return [d.status for d in await deployments(db, repairing.environment_id)]

    async def reported() -> bool:
        return "drifted" in await statuses()

    await async_wait_until(reported, timeout=5, what="the drift to be reported")
    assert await statuses() == ["drifted", "succeeded"]
    [still] = await repairing.runtime.list_containers(SHOP)
    assert still.id == replica.id and not still.running


# -- pure parts ------------------------------------------------------------------------


def docker_event(action: str, **labels: str) -> dict[str, Any]:
    attributes = {"name": "ry-web-0", "image": "busybox:stable", **labels}
    return {"Type": "container", "Action": action, "Actor": {"ID": "c1", "Attributes": attributes}}


OURS = {
    "railyard.managed": "true",
    "railyard.tenant": "acme",
    "railyard.app": "shop",
    "railyard.env": "production",
    "railyard.instance": INSTANCE,
    "railyard.spec-hash": "abc123",
}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (docker_event("die", **OURS), ContainerExit(SHOP, "ry-web-0", "die")),
        (docker_event("oom", **OURS), ContainerExit(SHOP, "ry-web-0", "oom")),
        (docker_event("destroy", **OURS), ContainerExit(SHOP, "ry-web-0", "destroy")),
        (docker_event("start", **OURS), None),
        (docker_event("kill", **OURS), None),
        (docker_event("die", **(OURS | {"railyard.spec-hash": "task"})), None),
        (docker_event("die", **(OURS | {"railyard.managed": "false"})), None),
        (docker_event("die", **{k: v for k, v in OURS.items() if k != "railyard.app"}), None),
        (docker_event("die", **OURS) | {"Type": "network"}, None),
    ],
    ids=["die", "oom", "destroy", "start", "kill", "task", "unmanaged", "no-app", "network"],
)
def test_docker_events_that_are_replica_exits(
    event: dict[str, Any], expected: ContainerExit | None
) -> None:
    assert exit_of(event) == expected


def test_the_engine_is_asked_only_for_exits_of_managed_containers() -> None:
    assert event_filters() == {
        "type": "container",
        "label": ["railyard.managed=true"],
        "event": ["die", "oom", "stop", "destroy"],
    }


@pytest.mark.parametrize(
    ("gap", "since_last", "expected"),
    [
        (0.0, None, 0.0),  # the first hint: no gap
        (0.0, 5.0, 2.0),  # asked again soon: the floor
        (2.0, 3.0, 4.0),  # and again: doubled
        (16.0, 20.0, 30.0),  # never more than the cap
        (30.0, 45.0, 30.0),  # a crash loop at the cap stays there
        (30.0, 61.0, 0.0),  # quiet for longer than the cap beyond its gap: start over
    ],
)
def test_an_environment_that_keeps_asking_is_spaced_out(
    gap: float, since_last: float | None, expected: float
) -> None:
    assert spacing(gap, since_last, floor=2.0, cap=30.0) == expected


def test_reconnecting_backs_off_exponentially_with_jitter_up_to_a_ceiling() -> None:
    delays = [reconnect_delay(n, low=1.0, high=30.0) for n in (1, 2, 3, 6, 100)]
    bounds = [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (15.0, 30.0), (15.0, 30.0)]
    assert all(low <= delay <= high for delay, (low, high) in zip(delays, bounds, strict=True))
