"""Checks across fields and services, each problem pinned to the exact path it concerns.

The models check each value on its own; these check how values fit together:
dependencies exist and form no cycle, routes have a port and do not clash,
references name real services, and previews can run on their own (their
services' dependencies are in the preview, and no production secret reaches
a preview unless the manifest says so).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping

from controller.spec.fields import HOSTNAME, SAMPLE_PLACEHOLDERS, show
from controller.spec.interpolation import Reference, find_references
from controller.spec.models import Manifest, ServiceSpec
from controller.spec.source_map import Path

Problem = tuple[Path, str]
_HOSTNAME = re.compile(HOSTNAME)


def check_manifest(manifest: Manifest) -> list[Problem]:
    """Every cross-field problem of a manifest whose services are known, as (path, message)."""
    services = manifest.service_specs()
    problems: list[Problem] = []
    for name, service in services.items():
        problems.extend(_service_problems(name, service, services))
    problems.extend(_cycle_problems(services))
    problems.extend(_route_clashes(services))
    problems.extend(_preview_problems(manifest, services))
    return problems


def _suggest(name: str, known: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {show(close[0])}?" if close else f"; services are: {', '.join(known)}"


def _service_problems(
    name: str, service: ServiceSpec, services: Mapping[str, ServiceSpec]
) -> Iterator[Problem]:
    base: Path = ("services", name)
    for index, dependency in enumerate(service.depends_on):
        if dependency == name:
            yield (*base, "depends_on", index), "a service cannot depend on itself"
        elif dependency not in services:
            message = f"unknown service {show(dependency)}" + _suggest(dependency, services)
            yield (*base, "depends_on", index), message
    if service.routes and service.port is None:
        yield (*base, "routes"), 'a service with routes needs a "port" to send requests to'
    health = service.healthcheck
    if health is not None and health.path is not None and (health.port or service.port) is None:
        yield (
            (*base, "healthcheck", "path"),
            'an HTTP check needs a "port" (here or on the service)',
        )
    mounts: dict[str, int] = {}
    for index, volume in enumerate(service.volumes):
        if volume.path in mounts:
            yield (
                (*base, "volumes", index),
                f"{volume.path} is already mounted by volume {mounts[volume.path]}",
            )
        mounts.setdefault(volume.path, index)
    for variable, value in service.env.items():
        yield from _reference_problems((*base, "env", variable), value, services)


def _reference_problems(
    path: Path, value: str, services: Mapping[str, ServiceSpec]
) -> Iterator[Problem]:
    for reference in find_references(value):
        if reference.namespace != "services":
            continue
        target = services.get(reference.name)
        if target is None:
            yield (
                path,
                f"{reference}: unknown service {show(reference.name)}"
                + _suggest(reference.name, services),
            )
        elif reference.attribute in ("url", "host") and not target.routes:
            yield (
                path,
                (
                    f"{reference}: service {show(reference.name)} has no routes; "
                    f"use services.{reference.name}.internal_url to reach it inside the app"
                ),
            )
        elif reference.attribute == "internal_url" and target.port is None:
            yield path, f"{reference}: service {show(reference.name)} has no port"


def _cycle_problems(services: Mapping[str, ServiceSpec]) -> Iterator[Problem]:
    """Each dependency cycle once, named in order, at the first service on it."""
    reported: set[frozenset[str]] = set()
    for start in services:
        cycle = _find_cycle(start, services)
        if cycle and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            shown = " -> ".join([*cycle, cycle[0]])
            yield ("services", cycle[0], "depends_on"), f"dependency cycle: {shown}"


def _find_cycle(start: str, services: Mapping[str, ServiceSpec]) -> list[str] | None:
    trail: list[str] = []
    on_trail: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in on_trail:
            return trail[trail.index(name) :]
        if name in done or name not in services:
            return None
        trail.append(name)
        on_trail.add(name)
        for dependency in services[name].depends_on:
            if dependency != name and (cycle := visit(dependency)):
                return cycle
        trail.pop()
        on_trail.discard(name)
        done.add(name)
        return None

    cycle = visit(start)
    return cycle if cycle and cycle[0] == start else None


def _route_clashes(services: Mapping[str, ServiceSpec]) -> Iterator[Problem]:
    owners: dict[tuple[str, str], str] = {}
    for name, service in services.items():
        for index, route in enumerate(service.routes):
            key = (route.host, route.path.rstrip("/") or "/")
            if key in owners:
                yield (
                    ("services", name, "routes", index),
                    (f"{route.host}{route.path} is already routed to service {show(owners[key])}"),
                )
            owners.setdefault(key, name)


def _preview_problems(manifest: Manifest, services: Mapping[str, ServiceSpec]) -> Iterator[Problem]:
    previews = manifest.previews
    for variable, value in previews.env.items():
        yield from _reference_problems(("previews", "env", variable), value, services)
    if not previews.enabled or not services:
        return
    chosen = list(services) if previews.services is None else list(previews.services)
    for index, name in enumerate(chosen):
        if name not in services:
            message = f"unknown service {show(name)}" + _suggest(name, services)
            yield ("previews", "services", index), message
    chosen = [name for name in chosen if name in services]
    for name in chosen:
        for dependency in services[name].depends_on:
            if dependency in services and dependency not in chosen:
                yield (
                    ("previews", "services"),
                    (
                        f"{show(name)} depends on {show(dependency)}, which previews do not run; "
                        f"add {show(dependency)} to previews.services"
                    ),
                )
        yield from _preview_secret_problems(manifest, name, services[name])
    yield from _preview_host_clashes(manifest, chosen, services)


def _preview_secret_problems(
    manifest: Manifest, name: str, service: ServiceSpec
) -> Iterator[Problem]:
    previews = manifest.previews
    for variable, value in service.env.items():
        if variable in previews.env:
            continue
        for reference in find_references(value):
            if reference.namespace == "secrets" and reference.name not in previews.secrets:
                yield ("services", name, "env", variable), _unshared(reference, variable)
    for variable, value in previews.env.items():
        for reference in find_references(value):
            if reference.namespace == "secrets" and reference.name not in previews.secrets:
                yield ("previews", "env", variable), _unshared(reference, variable)


def _unshared(reference: Reference, variable: str) -> str:
    return (
        f"previews would receive secret {show(reference.name)}: list it in previews.secrets "
        f"to share it, or set {variable} in previews.env"
    )


def _preview_host_clashes(
    manifest: Manifest, chosen: list[str], services: Mapping[str, ServiceSpec]
) -> Iterator[Problem]:
    owners: dict[tuple[str, str], str] = {}
    for name in chosen:
        for route in services[name].routes:
            sample = {**SAMPLE_PLACEHOLDERS, "service": name}
            key = (manifest.previews.host.format(**sample), route.path.rstrip("/") or "/")
            if not _HOSTNAME.fullmatch(key[0]):
                yield (
                    ("previews", "host"),
                    (
                        f"gives {show(key[0])} for service {show(name)}, which is not a valid "
                        "host name (each part between dots is at most 63 characters)"
                    ),
                )
            owner = owners.setdefault(key, name)
            if owner != name:
                yield (
                    ("previews", "host"),
                    (
                        f"services {show(owner)} and {show(name)} would share "
                        f"{key[0]}{route.path} in previews; put {{service}} in the host template"
                    ),
                )
