"""PURE: (Desired, Observed) -> Plan. No I/O, no clock, no Docker.

See ``controller.plan`` for the one ordering rule every plan follows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from graphlib import TopologicalSorter

from controller.plan import (
    AwaitHealthy,
    BuildImage,
    Drain,
    Plan,
    PullImage,
    RemoveContainer,
    RoutePlan,
    RunRelease,
    StartReplica,
    Step,
    SwitchRoutes,
)
from controller.state import (
    DesiredEnvironment,
    DesiredService,
    ObservedContainer,
    ObservedEnvironment,
    RouteTarget,
)


def dependency_order(services: Iterable[DesiredService]) -> list[DesiredService]:
    """Services ordered so each comes after what it depends on; ties broken by name."""
    by_name = {service.name: service for service in services}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for name in sorted(by_name):
        sorter.add(name, *(dep for dep in by_name[name].depends_on if dep in by_name))
    sorter.prepare()
    ordered: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered.extend(ready)
        sorter.done(*ready)
    return [by_name[name] for name in ordered]


def _kept_replicas(
    service: DesiredService, containers: Iterable[ObservedContainer]
) -> list[ObservedContainer]:
    """Running replicas already at the desired spec, up to the wanted count."""
    current = sorted(
        (c for c in containers if c.running and c.spec_hash == service.spec_hash),
        key=lambda c: (c.replica, c.name),
    )
    return current[: service.replicas]


def _free_indices(used: set[int], count: int) -> list[int]:
    indices: list[int] = []
    candidate = 0
    while len(indices) < count:
        if candidate not in used:
            indices.append(candidate)
        candidate += 1
    return indices


def _removal_reason(
    container: ObservedContainer, desired: DesiredEnvironment, kept_ids: set[str]
) -> str | None:
    service = desired.service(container.service)
    if service is None:
        return "service no longer in the manifest"
    if not container.running:
        return f"not running ({container.state})"
    if container.spec_hash != service.spec_hash:
        return f"replaced by spec {service.spec_hash[:8]}"
    if container.id not in kept_ids:
        return "more replicas than wanted"
    return None


def _desired_routes(desired: DesiredEnvironment) -> tuple[RoutePlan, ...]:
    return tuple(
        sorted(
            (
                RoutePlan(route.host, route.path, route.strip_prefix, svc.name, svc.spec_hash)
                for svc in desired.services
                for route in svc.routes
            ),
            key=lambda r: (r.host, r.path),
        )
    )


def _routes_match(
    wanted: tuple[RoutePlan, ...],
    observed: tuple[RouteTarget, ...],
    upstreams: dict[str, tuple[str, ...]],
) -> bool:
    expected = {
        (r.host, r.path, r.strip_prefix, r.service, upstreams.get(r.service, ())) for r in wanted
    }
    actual = {
        (r.host, r.path, r.strip_prefix, r.service, tuple(sorted(r.upstreams))) for r in observed
    }
    return expected == actual


@dataclass
class _Tally:
    """What the per-service pass found, for the environment-wide steps after it."""

    images: list[Step] = field(default_factory=list)
    starts: list[Step] = field(default_factory=list)
    kept_ids: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    early_removals: set[str] = field(default_factory=set)
    upstreams: dict[str, tuple[str, ...]] = field(default_factory=dict)


def plan(desired: DesiredEnvironment, observed: ObservedEnvironment) -> Plan:
    by_service: dict[str, list[ObservedContainer]] = defaultdict(list)
    for container in observed.containers:
        by_service[container.service].append(container)
    served = {address for route in observed.routes for address in route.upstreams}
    tally = _Tally()
    for service in dependency_order(desired.services):
        _plan_service(service, by_service[service.name], observed.images, served, tally)

    removals: list[RemoveContainer] = []
    for container in sorted(observed.containers, key=lambda c: c.name):
        if container.id in tally.early_removals:
            continue
        reason = _removal_reason(container, desired, tally.kept_ids)
        if reason is not None:
            removals.append(
                RemoveContainer(container.id, container.name, container.service, reason)
            )

    wanted_routes = _desired_routes(desired)
    routed = {r.service for r in wanted_routes} | {r.service for r in observed.routes}
    switch: list[Step] = []
    if (
        tally.changed & routed
        or any(r.service in routed for r in removals)
        or not _routes_match(wanted_routes, observed.routes, tally.upstreams)
    ):
        switch.append(SwitchRoutes(wanted_routes))

    drain: list[Step] = []
    address_of = {c.id: c.address for c in observed.containers}
    drained = [r for r in removals if address_of.get(r.container_id) in served]
    seconds = max((_drain_seconds(desired, r.service) for r in drained), default=0.0)
    if seconds > 0:
        drain.append(Drain(seconds))

    return Plan((*tally.images, *tally.starts, *switch, *drain, *removals))


def _plan_service(
    service: DesiredService,
    mine: list[ObservedContainer],
    images: frozenset[str],
    served: set[str],
    tally: _Tally,
) -> None:
    kept = _kept_replicas(service, mine)
    tally.kept_ids.update(c.id for c in kept)
    tally.upstreams[service.name] = tuple(sorted(c.address for c in kept if c.address))
    missing = service.replicas - len(kept)
    if missing <= 0:
        if service.routes and not all(c.address in served for c in kept):
            # Replicas started by a reconcile that never finished: check before routing.
            tally.starts.append(AwaitHealthy(service, tuple(c.id for c in kept)))
        return
    tally.changed.add(service.name)
    if service.image not in images:
        if service.build is not None:
            tally.images.append(BuildImage(service.name, service.image, service.build))
        else:
            tally.images.append(PullImage(service.name, service.image))
    spec = service.spec_hash
    if service.release and not any(c.spec_hash == spec for c in mine):
        tally.starts.append(RunRelease(service))
    if service.strategy == "recreate":
        for container in sorted(mine, key=lambda c: c.name):
            if container.spec_hash != spec or not container.running:
                tally.starts.append(
                    RemoveContainer(container.id, container.name, service.name, "recreate")
                )
                tally.early_removals.add(container.id)
    # Never reuse the index (hence the name) of a container that still exists at this
    # spec: it may be an unhealthy replica still serving until the switch.
    used = {c.replica for c in mine if c.spec_hash == spec}
    tally.starts.extend(StartReplica(service, index) for index in _free_indices(used, missing))
    tally.starts.append(AwaitHealthy(service))


def _drain_seconds(desired: DesiredEnvironment, service_name: str) -> float:
    service = desired.service(service_name)
    return service.drain_seconds if service else desired.drain_seconds
