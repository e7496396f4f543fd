"""How ``controller.planner.plan()`` scales with the number of services in an environment.

Inputs are built synthetically, outside the timed region: N services, each with one
route and one replica; half are converged (a running replica at the desired spec,
routed), a quarter have a new spec (a running, routed replica at an old spec, and an
image that is not there yet), a quarter are new (nothing runs). The plan is timed
with the garbage collector paused (as ``timeit`` does), several times per size, and
the median is kept.

Growth is judged by the time per service at the largest size against the smallest:
linear planning keeps that ratio near 1. The exponent ``k`` of ``time ~ N^k`` fitted
through the two end points says the same thing in one number (1.0 is linear, 2.0 is
quadratic).
"""

from __future__ import annotations

import cProfile
import gc
import math
import pstats
import time
from dataclasses import dataclass
from pathlib import Path

from controller.plan import Plan
from controller.planner import plan
from controller.state import (
    DesiredEnvironment,
    DesiredService,
    EnvironmentKey,
    ObservedContainer,
    ObservedEnvironment,
    Route,
    RouteTarget,
)
from tests.bench.report import Section, TableData, median, ms

SIZES = (100, 1_000, 10_000)
QUICK_SIZES = (100, 500, 2_000)
RUNS = {100: 15, 1_000: 7, 10_000: 3}
QUICK_RUNS = 3
TIME_BUDGET_PER_SIZE = 60.0
"""Seconds of measuring per size after the first run; never fewer than 3 runs."""
LINEAR_EXPONENT = 1.15
"""Largest fitted exponent that still counts as ~linear: from 100 to 10,000 services
it allows the time per service to double (caches and allocation are not free)."""
PROFILE_SIZE = 5_000
QUICK_PROFILE_SIZE = 2_000
HOTSPOTS = 6

KEY = EnvironmentKey("bench", "planner", "production")
OLD_SPEC = "0" * 16


@dataclass(frozen=True)
class Measurement:
    services: int
    runs: list[float]
    steps: int
    summary: str

    @property
    def median(self) -> float:
        return median(self.runs)

    @property
    def per_service(self) -> float:
        return self.median / self.services


def synthetic_environment(count: int) -> tuple[DesiredEnvironment, ObservedEnvironment]:
    services: list[DesiredService] = []
    containers: list[ObservedContainer] = []
    routes: list[RouteTarget] = []
    images: set[str] = set()
    for index in range(count):
        name = f"svc{index:05d}"
        host = f"{name}.bench.test"
        service = DesiredService(
            name=name, image=f"bench/{name}:v2", port=8080, routes=(Route(host),)
        )
        services.append(service)
        kind = index % 4
        if kind in (0, 1):  # converged
            images.add(service.image)
            spec = service.spec_hash
        elif kind == 2:  # new spec: the old replica keeps serving until replaced
            spec = OLD_SPEC
        else:  # new service: nothing runs yet
            continue
        port = 20_000 + index
        containers.append(
            ObservedContainer(
                id=f"{index:012x}",
                name=f"ry-{KEY.slug}-{name}-{spec[:8]}-0",
                service=name,
                spec_hash=spec,
                revision="old",
                replica=0,
                state="running",
                host_port=port,
                environment=KEY,
            )
        )
        routes.append(RouteTarget(host, "/", name, (f"127.0.0.1:{port}",)))
    desired = DesiredEnvironment(KEY, "new", tuple(services))
    return desired, ObservedEnvironment(tuple(containers), tuple(routes), frozenset(images))


def timed_plan(desired: DesiredEnvironment, observed: ObservedEnvironment) -> tuple[float, Plan]:
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        result = plan(desired, observed)
        elapsed = time.perf_counter() - started
    finally:
        gc.enable()
    return elapsed, result


def measure(count: int, runs: int) -> Measurement:
    desired, observed = synthetic_environment(count)
    elapsed, first = timed_plan(desired, observed)
    times = [elapsed]
    budget_end = time.monotonic() + TIME_BUDGET_PER_SIZE
    while len(times) < runs and (len(times) < 3 or time.monotonic() < budget_end):
        elapsed, result = timed_plan(desired, observed)
        if result != first:
            raise AssertionError(f"plan() gave two different plans for the same {count} services")
        times.append(elapsed)
    return Measurement(count, times, len(first.steps), first.summary())


def hotspots(count: int, top: int = HOTSPOTS) -> list[tuple[str, float, int]]:
    """Railyard's functions that one plan of ``count`` services spends the most time in:
    (function, share of the whole plan including what it calls, calls), largest first.
    Profiling slows everything alike, so the shares count here, not the seconds."""
    desired, observed = synthetic_environment(count)
    profiler = cProfile.Profile()
    profiler.runcall(plan, desired, observed)
    profile = pstats.Stats(profiler).get_stats_profile()
    rows = []
    whole = 0.0
    for function, found in profile.func_profiles.items():
        path = Path(found.file_name)
        if "controller" not in path.parts:
            continue
        if path.name == "planner.py" and function == "plan":
            whole = found.cumtime
            continue
        calls = int(str(found.ncalls).split("/")[0])
        rows.append((f"{path.name}:{found.line_number} {function}", found.cumtime, calls))
    ranked = sorted(rows, key=lambda r: r[1], reverse=True)[:top]
    return [(where, cumulative / (whole or 1.0), calls) for where, cumulative, calls in ranked]


def expected_steps(count: int) -> int:
    """Images, starts and health waits for the changed and new half; one switch; one
    drain; one removal per replaced replica."""
    changed = sum(1 for index in range(count) if index % 4 in (2, 3))
    replaced = sum(1 for index in range(count) if index % 4 == 2)
    return 3 * changed + 1 + 1 + replaced


def run(*, quick: bool = False) -> Section:
    sizes = QUICK_SIZES if quick else SIZES
    profile_size = QUICK_PROFILE_SIZE if quick else PROFILE_SIZE
    section = Section(
        name="plan",
        title="controller.planner.plan() time against environment size",
        parameters={
            "sizes": list(sizes),
            "runs_per_size": {n: QUICK_RUNS if quick else RUNS.get(n, 3) for n in sizes},
            "time_budget_per_size_s": TIME_BUDGET_PER_SIZE,
            "mix": "1/2 converged, 1/4 new spec, 1/4 new; one route and one replica each",
            "statistic": "median, garbage collector paused while timing",
        },
    )
    measurements = []
    for count in sizes:
        found = measure(count, QUICK_RUNS if quick else RUNS.get(count, 3))
        if found.steps != expected_steps(count):
            section.findings.append(
                f"plan() for {count} services has {found.steps} steps, expected "
                f"{expected_steps(count)} ({found.summary})"
            )
        measurements.append(found)

    smallest, largest = measurements[0], measurements[-1]
    ratio = largest.per_service / smallest.per_service
    exponent = math.log(largest.median / smallest.median) / math.log(
        largest.services / smallest.services
    )
    linear = exponent <= LINEAR_EXPONENT
    table = TableData(
        "plan() median time per environment size",
        ("services", "runs", "median ms", "min ms", "max ms", "µs / service", "steps"),
        caption=f"plan summary at {largest.services}: {largest.summary}",
    )
    for found in measurements:
        table.add(
            found.services,
            len(found.runs),
            ms(found.median),
            ms(min(found.runs)),
            ms(max(found.runs)),
            f"{found.per_service * 1e6:.1f}",
            found.steps,
        )
    section.tables.append(table)
    verdict = "~linear" if linear else "NOT linear"
    section.notes.append(
        f"growth: time per service at {largest.services} / at {smallest.services} = "
        f"{ratio:.2f}x; fitted exponent k = {exponent:.2f} (time ~ N^k): {verdict}"
    )
    if not linear:
        profiled = hotspots(profile_size)
        top = TableData(
            f"Where plan() spends its time at {profile_size} services (cProfile)",
            ("function", "share of plan()", "calls"),
            caption="shares include what each function calls, so they overlap",
        )
        for where, share, calls in profiled:
            top.add(where, f"{share:.0%}", calls)
        section.tables.append(top)
        section.results["hotspots"] = [
            {"function": where, "share_of_plan": round(share, 3), "calls": calls}
            for where, share, calls in profiled
        ]
        section.findings.append(
            f"plan() grows faster than linear: {ratio:.1f}x the time per service at "
            f"{largest.services} services than at {smallest.services} (k = {exponent:.2f}); "
            f"{ms(largest.median)} ms for one plan of {largest.services} services"
        )
    section.results.update(
        {
            "sizes": [
                {
                    "services": m.services,
                    "runs_s": [round(t, 6) for t in m.runs],
                    "median_s": round(m.median, 6),
                    "per_service_us": round(m.per_service * 1e6, 3),
                    "steps": m.steps,
                    "plan_summary": m.summary,
                }
                for m in measurements
            ],
            "per_service_growth_ratio": round(ratio, 3),
            "fitted_exponent": round(exponent, 3),
            "linear": linear,
        }
    )
    section.summary = (
        f"{ms(largest.median)} ms for {largest.services} services; per-service growth "
        f"{ratio:.2f}x from {smallest.services} (k={exponent:.2f}, {verdict})"
    )
    return section
