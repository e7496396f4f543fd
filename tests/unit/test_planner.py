"""The planner is pure: tables of (desired, observed) -> the steps, in the documented order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.plan import (
    AwaitHealthy,
    BuildImage,
    Drain,
    Plan,
    PullImage,
    RemoveContainer,
    StartReplica,
    SwitchRoutes,
)
from controller.planner import dependency_order, plan
from controller.state import (
    BuildSource,
    DesiredEnvironment,
    DesiredService,
    EnvironmentKey,
    ObservedContainer,
    ObservedEnvironment,
    Route,
    RouteTarget,
)

KEY = EnvironmentKey("acme", "shop", "production")
WEB = DesiredService(
    name="web",
    image="railyard/acme-shop-web:1",
    build=BuildSource(),
    port=8080,
    routes=(Route("shop.localhost"),),
)
WORKER = DesiredService(name="worker", image="busybox:stable", command=("sleep", "1d"))


def env(*services: DesiredService) -> DesiredEnvironment:
    return DesiredEnvironment(KEY, "rev2", services)


def running(service: DesiredService, replica: int = 0, port: int = 30000) -> ObservedContainer:
    return ObservedContainer(
        id=f"{service.name}-{service.spec_hash[:4]}-{replica}",
        name=f"ry-{service.name}-{replica}",
        service=service.name,
        spec_hash=service.spec_hash,
        revision="rev1",
        replica=replica,
        state="running",
        host_port=port or None,
    )


def routes_to(service: DesiredService, *containers: ObservedContainer) -> RouteTarget:
    route = service.routes[0]
    upstreams = tuple(sorted(c.address for c in containers if c.address))
    return RouteTarget(route.host, route.path, service.name, upstreams)


def kinds(result: Plan) -> list[str]:
    return [type(step).__name__ for step in result.steps]


WEB_V2 = replace(WEB, image="railyard/acme-shop-web:2")
OLD = running(WEB, port=30001)

CASES = [
    pytest.param(
        env(WEB),
        ObservedEnvironment(),
        ["BuildImage", "StartReplica", "AwaitHealthy", "SwitchRoutes"],
        id="first deploy builds, starts, waits, routes",
    ),
    pytest.param(
        env(WEB),
        ObservedEnvironment(images=frozenset({WEB.image})),
        ["StartReplica", "AwaitHealthy", "SwitchRoutes"],
        id="image already built is not rebuilt",
    ),
    pytest.param(
        env(WEB),
        ObservedEnvironment((OLD,), (routes_to(WEB, OLD),), frozenset({WEB.image})),
        [],
        id="converged environment plans nothing",
    ),
    pytest.param(
        env(WEB_V2),
        ObservedEnvironment((OLD,), (routes_to(WEB, OLD),), frozenset({WEB.image})),
        ["BuildImage", "StartReplica", "AwaitHealthy", "SwitchRoutes", "Drain", "RemoveContainer"],
        id="new spec: start first, switch, drain, then remove old",
    ),
    pytest.param(
        env(replace(WEB_V2, strategy="recreate")),
        ObservedEnvironment((OLD,), (routes_to(WEB, OLD),), frozenset({WEB_V2.image})),
        ["RemoveContainer", "StartReplica", "AwaitHealthy", "SwitchRoutes"],
        id="recreate removes old before starting new",
    ),
    pytest.param(
        env(WEB),
        ObservedEnvironment(
            (replace(OLD, state="exited"),), (routes_to(WEB, OLD),), frozenset({WEB.image})
        ),
        ["StartReplica", "AwaitHealthy", "SwitchRoutes", "Drain", "RemoveContainer"],
        id="drift: a stopped replica is replaced",
    ),
    pytest.param(
        env(WEB),
        ObservedEnvironment((OLD,), (), frozenset({WEB.image})),
        ["AwaitHealthy", "SwitchRoutes"],
        id="drift: a route removed behind our back is restored after a health check",
    ),
    pytest.param(
        env(WEB),
        ObservedEnvironment(
            (OLD,),
            (RouteTarget("shop.localhost", "/", "web", ("127.0.0.1:1",)),),
            frozenset({WEB.image}),
        ),
        ["AwaitHealthy", "SwitchRoutes"],
        id="drift: a route pointing elsewhere is corrected",
    ),
    pytest.param(
        env(WEB),
        ObservedEnvironment(
            (OLD, running(WORKER, port=0)), (routes_to(WEB, OLD),), frozenset({WEB.image})
        ),
        ["RemoveContainer"],
        id="prune: a service gone from the manifest is removed",
    ),
    pytest.param(
        env(replace(WEB, replicas=1)),
        ObservedEnvironment(
            (OLD, running(WEB, 1, 30002)),
            (routes_to(WEB, OLD, running(WEB, 1, 30002)),),
            frozenset({WEB.image}),
        ),
        ["SwitchRoutes", "Drain", "RemoveContainer"],
        id="scale down: route away first, then remove the surplus",
    ),
    pytest.param(
        env(replace(WEB, replicas=3)),
        ObservedEnvironment((OLD,), (routes_to(WEB, OLD),), frozenset({WEB.image})),
        ["StartReplica", "StartReplica", "AwaitHealthy", "SwitchRoutes"],
        id="scale up starts only the missing replicas",
    ),
    pytest.param(
        env(WORKER),
        ObservedEnvironment(),
        ["PullImage", "StartReplica", "AwaitHealthy"],
        id="an image service is pulled, a routeless one needs no switch",
    ),
    pytest.param(
        env(),
        ObservedEnvironment((OLD,), (routes_to(WEB, OLD),)),
        ["SwitchRoutes", "Drain", "RemoveContainer"],
        id="empty manifest removes routes and containers",
    ),
]


@pytest.mark.parametrize(("desired", "observed", "expected"), CASES)
def test_plan_steps(
    desired: DesiredEnvironment, observed: ObservedEnvironment, expected: list[str]
) -> None:
    assert kinds(plan(desired, observed)) == expected


def test_plan_is_deterministic_and_printable() -> None:
    observed = ObservedEnvironment((OLD,), (routes_to(WEB, OLD),), frozenset())
    first, second = plan(env(WEB_V2), observed), plan(env(WEB_V2), observed)
    assert first == second
    assert str(first).splitlines()[0] == (
        "1. build image railyard/acme-shop-web:2 for web (context .)"
    )
    assert "remove ry-web-0 (replaced by spec" in str(first)
    assert first.summary() == "build 1, start 1, health 1, switch 1, drain 1, remove 1"


def test_new_replicas_take_free_indices() -> None:
    observed = ObservedEnvironment(
        (running(WEB, 1, 30002),), (routes_to(WEB, running(WEB, 1, 30002)),), frozenset({WEB.image})
    )
    steps = plan(env(replace(WEB, replicas=3)), observed).steps
    assert [s.replica for s in steps if isinstance(s, StartReplica)] == [0, 2]


def test_switch_points_at_the_desired_spec() -> None:
    steps = plan(env(WEB_V2), ObservedEnvironment((OLD,), (routes_to(WEB, OLD),))).steps
    switch = next(s for s in steps if isinstance(s, SwitchRoutes))
    assert [(r.host, r.service, r.spec_hash) for r in switch.routes] == [
        ("shop.localhost", "web", WEB_V2.spec_hash)
    ]


def test_dependencies_start_first() -> None:
    db = DesiredService(name="db", image="busybox:stable")
    api = replace(WEB, name="api", depends_on=("db",))
    steps = plan(env(api, db), ObservedEnvironment(images=frozenset({api.image, db.image}))).steps
    started = [s.service.name for s in steps if isinstance(s, StartReplica | AwaitHealthy)]
    assert started == ["db", "db", "api", "api"]
    assert [s.name for s in dependency_order([api, db])] == ["db", "api"]


def test_no_drain_when_nothing_served_traffic() -> None:
    stale = running(WORKER, port=0)
    steps = plan(env(), ObservedEnvironment((stale,))).steps
    assert not any(isinstance(s, Drain) for s in steps)
    assert [type(s) for s in steps] == [RemoveContainer]


def test_changing_only_routes_does_not_replace_containers() -> None:
    moved = replace(WEB, routes=(Route("new.localhost"),))
    steps = plan(env(moved), ObservedEnvironment((OLD,), (routes_to(WEB, OLD),), frozenset())).steps
    assert [type(s) for s in steps] == [SwitchRoutes]
    assert not any(isinstance(s, BuildImage | PullImage) for s in steps)


def test_release_runs_once_per_new_version_before_its_replicas() -> None:
    migrating = replace(WEB_V2, release=("sh", "-c", "migrate"))
    observed = ObservedEnvironment((OLD,), (routes_to(WEB, OLD),), frozenset({WEB_V2.image}))
    steps = plan(env(migrating), observed).steps
    assert [type(s).__name__ for s in steps][:3] == ["RunRelease", "StartReplica", "AwaitHealthy"]
    scaled = replace(migrating, replicas=2)
    current = running(migrating, 0, 30005)
    again = plan(env(scaled), ObservedEnvironment((current,), (routes_to(WEB, current),))).steps
    assert not any(type(s).__name__ == "RunRelease" for s in again), "scale-up: no release"
