"""PURE: (Desired, Observed) -> Plan. No I/O, no clock, no Docker.

See ``controller.plan`` for the one ordering rule every plan follows.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def plan(desired: DesiredEnvironment, observed: ObservedEnvironment) -> Plan:
    images: list[Step] = []
    starts: list[Step] = []
    kept_ids: set[str] = set()
    changed_services: set[str] = set()
    early_removals: set[str] = set()
    upstreams: dict[str, tuple[str, ...]] = {}

    for service in dependency_order(desired.services):
        mine = [c for c in observed.containers if c.service == service.name]
        kept = _kept_replicas(service, mine)
        kept_ids.update(c.id for c in kept)
        upstreams[service.name] = tuple(sorted(c.address for c in kept if c.address))
        missing = service.replicas - len(kept)
        if missing <= 0:
            if service.routes and not _already_routed(kept, observed.routes):
                # Replicas started by a reconcile that never finished: check before routing.
                starts.append(AwaitHealthy(service, tuple(c.id for c in kept)))
            continue
        changed_services.add(service.name)
        if service.image not in observed.images:
            if service.build is not None:
                images.append(BuildImage(service.name, service.image, service.build))
            else:
                images.append(PullImage(service.name, service.image))
        if service.release and not any(c.spec_hash == service.spec_hash for c in mine):
            starts.append(RunRelease(service))
        if service.strategy == "recreate":
            for container in sorted(mine, key=lambda c: c.name):
                if container.spec_hash != service.spec_hash or not container.running:
                    starts.append(
                        RemoveContainer(container.id, container.name, service.name, "recreate")
                    )
                    early_removals.add(container.id)
        # Never reuse the index (hence the name) of a container that still exists at this
        # spec: it may be an unhealthy replica still serving until the switch.
        used = {c.replica for c in mine if c.spec_hash == service.spec_hash}
        starts.extend(StartReplica(service, index) for index in _free_indices(used, missing))
        starts.append(AwaitHealthy(service))

    removals: list[RemoveContainer] = []
    for container in sorted(observed.containers, key=lambda c: c.name):
        if container.id in early_removals:
            continue
        reason = _removal_reason(container, desired, kept_ids)
        if reason is not None:
            removals.append(
                RemoveContainer(container.id, container.name, container.service, reason)
            )

    wanted_routes = _desired_routes(desired)
    routed = {r.service for r in wanted_routes} | {r.service for r in observed.routes}
    switch: list[Step] = []
    if (
        changed_services & routed
        or any(r.service in routed for r in removals)
        or not _routes_match(wanted_routes, observed.routes, upstreams)
    ):
        switch.append(SwitchRoutes(wanted_routes))

    drain: list[Step] = []
    served = {address for route in observed.routes for address in route.upstreams}
    drained = [r for r in removals if _address_of(observed, r.container_id) in served]
    seconds = max((_drain_seconds(desired, r.service) for r in drained), default=0.0)
    if seconds > 0:
        drain.append(Drain(seconds))

    return Plan((*images, *starts, *switch, *drain, *removals))


def _already_routed(kept: list[ObservedContainer], routes: tuple[RouteTarget, ...]) -> bool:
    served = {address for route in routes for address in route.upstreams}
    return all(c.address in served for c in kept)


def _drain_seconds(desired: DesiredEnvironment, service_name: str) -> float:
    service = desired.service(service_name)
    return service.drain_seconds if service else desired.drain_seconds


def _address_of(observed: ObservedEnvironment, container_id: str) -> str | None:
    container = next((c for c in observed.containers if c.id == container_id), None)
    return container.address if container else None
