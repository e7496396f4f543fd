"""The executor on fakes: zero-downtime order, and every failure branch leaves the old serving."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from controller.errors import (
    BuildError,
    HealthCheckFailed,
    ReleaseFailed,
    RouterError,
    RuntimeUnavailable,
)
from controller.executor import Executor
from controller.health import StaticProber
from controller.planner import plan
from controller.router.fake import FakeRouter
from controller.runtime.fake import FakeRuntime
from controller.state import (
    BuildSource,
    DesiredEnvironment,
    DesiredService,
    EnvironmentKey,
    HealthCheck,
    ObservedEnvironment,
    Route,
)

KEY = EnvironmentKey("acme", "shop", "production")
V1 = DesiredService(
    name="web",
    image="shop:v1",
    port=8080,
    replicas=2,
    healthcheck=HealthCheck(path="/healthz", interval=0.01),
    routes=(Route("shop.localhost"),),
    drain_seconds=1.0,
)
V2 = replace(V1, image="shop:v2")


class Clock:
    """A fake monotonic clock that advances when the executor sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.after_sleep: Callable[[float], None] = lambda seconds: None
        """Something that happens in the world while the executor waits."""

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        self.after_sleep(seconds)

    def monotonic(self) -> float:
        return self.now


class Harness:
    def __init__(self) -> None:
        self.runtime = FakeRuntime(images=["shop:v1", "shop:v2"])
        self.router = FakeRouter()
        self.prober = StaticProber()
        self.clock = Clock()
        self.events: list[tuple[str, str, str]] = []
        self.executor = Executor(
            self.runtime,
            self.router,
            source=NoSource(),
            prober=self.prober,
            health_timeout=5.0,
            sleep=self.clock.sleep,
            monotonic=self.clock.monotonic,
        )

    async def record(self, reason: str, message: str, level: str) -> None:
        self.events.append((reason, message, level))

    async def converge(self, *services: DesiredService) -> None:
        desired = DesiredEnvironment(KEY, "rev", services)
        observed = ObservedEnvironment(
            tuple(await self.runtime.list_containers(KEY)),
            tuple(await self.router.observe(KEY)),
            frozenset(self.runtime.images),
        )
        await self.executor.execute(plan(desired, observed), desired, "repo", self.record)

    async def upstreams(self) -> set[str]:
        return {u for route in await self.router.observe(KEY) for u in route.upstreams}

    async def addresses(self, image_spec: str) -> set[str]:
        return {
            c.address or ""
            for c in await self.runtime.list_containers(KEY)
            if c.spec_hash == image_spec
        }


class NoSource:
    async def archive(self, repo_url: str, revision: str, path: str) -> bytes:
        return b"build context"


@pytest.fixture
async def deployed() -> Harness:
    harness = Harness()
    await harness.converge(V1)
    return harness


async def test_first_deploy_routes_to_all_replicas(deployed: Harness) -> None:
    assert await deployed.upstreams() == await deployed.addresses(V1.spec_hash)
    assert len(await deployed.upstreams()) == 2


async def test_rolling_update_starts_new_before_removing_old(deployed: Harness) -> None:
    deployed.runtime.operations.clear()
    await deployed.converge(V2)
    ops = [op.split()[0] for op in deployed.runtime.operations]
    assert ops == ["start", "start", "remove", "remove"]
    assert await deployed.upstreams() == await deployed.addresses(V2.spec_hash)
    assert len(deployed.router.applies_for(KEY)) == 2, "one switch per deploy"
    assert 1.0 in deployed.clock.slept, "old replicas drained before removal"


async def test_unhealthy_new_version_leaves_old_serving(deployed: Harness) -> None:
    before = await deployed.upstreams()
    deployed.prober.unhealthy.add("web")
    with pytest.raises(HealthCheckFailed, match="did not become healthy"):
        await deployed.converge(V2)
    assert await deployed.upstreams() == before
    assert {c.spec_hash for c in await deployed.runtime.list_containers(KEY)} == {V1.spec_hash}
    assert any(reason == "rolled_back" for reason, _, _ in deployed.events)


async def test_crashing_new_version_fails_fast_with_its_logs(deployed: Harness) -> None:
    deployed.runtime.exit_on_start.add("web")
    deployed.runtime.crash_logs["web"] = "panic: cannot open database\n"
    with pytest.raises(HealthCheckFailed) as caught:
        await deployed.converge(V2)
    assert "exited" in caught.value.message
    assert "panic: cannot open database" in caught.value.log_tail
    assert deployed.clock.now < 5.0, "did not wait for the full timeout"


async def test_router_rejection_removes_new_replicas(deployed: Harness) -> None:
    before = await deployed.upstreams()
    deployed.router.fail_apply = 1
    with pytest.raises(RouterError):
        await deployed.converge(V2)
    assert await deployed.upstreams() == before
    assert {c.spec_hash for c in await deployed.runtime.list_containers(KEY)} == {V1.spec_hash}


async def test_engine_failure_on_start_changes_nothing_that_serves(deployed: Harness) -> None:
    before = await deployed.upstreams()
    deployed.runtime.fail_start.add("web")
    with pytest.raises(RuntimeUnavailable):
        await deployed.converge(V2)
    assert await deployed.upstreams() == before


async def test_rerunning_after_a_crash_converges_without_duplicates(deployed: Harness) -> None:
    # A worker died after starting one new replica: the next run completes the job.
    await deployed.runtime.start_container(KEY, V2, "rev", 0)
    await deployed.converge(V2)
    containers = await deployed.runtime.list_containers(KEY)
    assert sorted(c.replica for c in containers) == [0, 1]
    assert {c.spec_hash for c in containers} == {V2.spec_hash}
    assert await deployed.upstreams() == await deployed.addresses(V2.spec_hash)


async def test_killed_replica_is_replaced_by_the_next_reconcile(deployed: Harness) -> None:
    victim = (await deployed.runtime.list_containers(KEY))[0]
    deployed.runtime.kill(victim.id)
    await deployed.converge(V1)
    containers = await deployed.runtime.list_containers(KEY)
    assert all(c.running for c in containers) and len(containers) == 2
    assert victim.address not in await deployed.upstreams()


async def test_failed_release_aborts_before_any_new_replica(deployed: Harness) -> None:
    before = await deployed.upstreams()
    deployed.runtime.task_exit_codes["web"] = 3
    deployed.runtime.operations.clear()
    with pytest.raises(ReleaseFailed, match="exited with 3"):
        await deployed.converge(replace(V2, release=("migrate",)))
    assert deployed.runtime.operations == ["task web: migrate"]
    assert await deployed.upstreams() == before
    assert any(reason == "release_output" for reason, _, _ in deployed.events)


DB = DesiredService(name="db", image="shop:v1", port=5432, replicas=2)
WEB = replace(V1, depends_on=("db",), release=("migrate",))
JOBS = DesiredService(name="jobs", image="shop:v1", depends_on=("web",))


async def ids_of(harness: Harness, service: DesiredService) -> set[str]:
    return {
        c.id
        for c in await harness.runtime.list_containers(KEY)
        if c.service == service.name and c.spec_hash == service.spec_hash
    }


async def test_release_reaches_only_the_new_replicas_of_the_services_it_calls() -> None:
    harness = Harness()
    await harness.converge(DB, WEB, JOBS)
    old_db = await ids_of(harness, DB)
    harness.events.clear()
    db, web, jobs = (replace(s, image="shop:v2") for s in (DB, WEB, JOBS))

    await harness.converge(db, web, jobs)

    # Old db replicas still ran during the release (removed only at the end), yet the
    # release was pinned to the new ones; web and jobs had no new replica yet: DNS.
    peers = harness.runtime.task_peers["web"]
    assert set(peers) == {"db"}
    assert set(peers["db"]) == await ids_of(harness, db)
    assert not set(peers["db"]) & old_db
    [pinned] = [m for reason, m, _ in harness.events if reason == "release_pinned"]
    assert pinned.startswith("release of web reaches db at ry-")
    assert f"db-{db.spec_hash[:8]}-0" in pinned and DB.spec_hash[:8] not in pinned


async def test_release_skips_replicas_the_plan_removes_even_at_the_desired_spec() -> None:
    harness = Harness()
    await harness.converge(replace(DB, replicas=3), WEB)
    [kept] = [
        c.id
        for c in await harness.runtime.list_containers(KEY)
        if (c.service, c.replica) == ("db", 0)
    ]

    # Scaling db down to one removes two replicas of the same spec after the release.
    await harness.converge(replace(DB, replicas=1), replace(WEB, image="shop:v2"))

    assert harness.runtime.task_peers["web"] == {"db": (kept,)}
    assert await ids_of(harness, DB) == {kept}


async def test_failed_build_starts_nothing_and_keeps_its_output(deployed: Harness) -> None:
    before = await deployed.upstreams()
    built = replace(V2, image="shop:built", build=BuildSource())
    deployed.runtime.fail_build.add("shop:built")
    deployed.runtime.operations.clear()
    with pytest.raises(BuildError, match="building shop:built failed"):
        await deployed.converge(built)
    assert deployed.runtime.operations == ["build shop:built"]
    assert await deployed.upstreams() == before
    output = [message for reason, message, _ in deployed.events if reason == "build_output"]
    assert output and "building shop:built" in output[-1], "the build's lines are recorded"


async def test_failed_pull_starts_nothing(deployed: Harness) -> None:
    before = await deployed.upstreams()
    pulled = replace(V2, image="shop:missing")
    deployed.runtime.fail_pull.add("shop:missing")
    deployed.runtime.operations.clear()
    with pytest.raises(RuntimeUnavailable, match="registry unreachable"):
        await deployed.converge(pulled)
    assert deployed.runtime.operations == ["pull shop:missing"]
    assert await deployed.upstreams() == before


async def test_an_existing_image_is_neither_built_nor_pulled(deployed: Harness) -> None:
    deployed.runtime.operations.clear()
    await deployed.converge(replace(V2, build=BuildSource()))
    assert not [op for op in deployed.runtime.operations if op.split()[0] in ("build", "pull")]


async def test_a_failure_after_the_switch_keeps_the_new_replicas_serving(
    deployed: Harness,
) -> None:
    """The engine goes away while old replicas are drained: what serves now is the new
    version, and the next run only finishes the removals."""

    def engine_dies_while_draining(seconds: float) -> None:
        if seconds == V2.drain_seconds:
            deployed.runtime.unavailable = True

    deployed.clock.after_sleep = engine_dies_while_draining
    with pytest.raises(RuntimeUnavailable):
        await deployed.converge(V2)
    deployed.runtime.unavailable = False
    deployed.clock.after_sleep = lambda seconds: None
    assert await deployed.upstreams() == await deployed.addresses(V2.spec_hash)
    assert not any(reason == "rolled_back" for reason, _, _ in deployed.events)
    await deployed.converge(V2)
    assert {c.spec_hash for c in await deployed.runtime.list_containers(KEY)} == {V2.spec_hash}


async def test_a_later_service_failing_removes_every_new_replica_of_the_deploy() -> None:
    harness = Harness()
    await harness.converge(DB, V1)
    before = await harness.upstreams()
    harness.prober.unhealthy.add("web")
    with pytest.raises(HealthCheckFailed):
        await harness.converge(replace(DB, image="shop:v2"), V2)
    running = await harness.runtime.list_containers(KEY)
    assert {c.spec_hash for c in running} == {DB.spec_hash, V1.spec_hash}, "new db removed too"
    assert await harness.upstreams() == before
