"""After cutover the health check keeps running: replicas that stop answering are found here.

The periodic resync probes every running replica of a service that has a health
check. A replica that fails every retry is reported as ``unhealthy``, which the
planner treats like a stopped one: it is replaced, never trusted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta

from controller.health import Prober, ProbeResult
from controller.state import (
    DesiredEnvironment,
    HealthCheck,
    ObservedContainer,
    ObservedEnvironment,
)

Sleep = Callable[[float], Awaitable[None]]

AUTO_ROLLBACK_WINDOW = timedelta(minutes=1)
"""A new revision whose replicas turn unhealthy this soon after cutover is rolled back."""


async def probe_replicas(
    desired: DesiredEnvironment,
    observed: ObservedEnvironment,
    prober: Prober,
    *,
    sleep: Sleep = asyncio.sleep,
) -> tuple[ObservedEnvironment, list[tuple[ObservedContainer, ProbeResult]]]:
    """Mark running replicas that fail all their health-check retries as ``unhealthy``."""
    sick: list[tuple[ObservedContainer, ProbeResult]] = []
    containers = []
    for container in observed.containers:
        service = desired.service(container.service)
        if service is None or not container.running or container.spec_hash != service.spec_hash:
            containers.append(container)
            continue
        result = await _probe_with_retries(prober, container, service.healthcheck, sleep)
        if result.ok:
            containers.append(container)
        else:
            sick.append((container, result))
            containers.append(replace(container, state="unhealthy"))
    return replace(observed, containers=tuple(containers)), sick


async def _probe_with_retries(
    prober: Prober, container: ObservedContainer, check: HealthCheck, sleep: Sleep
) -> ProbeResult:
    result = await prober.probe(container, check)
    for _ in range(max(check.retries - 1, 0)):
        if result.ok:
            return result
        await sleep(check.interval)
        result = await prober.probe(container, check)
    return result


def within_rollback_window(finished_at: datetime | None, now: datetime) -> bool:
    """Did the current deployment finish recently enough for an automatic rollback?"""
    if finished_at is None:
        return False
    if finished_at.tzinfo is None and now.tzinfo is not None:
        now = now.replace(tzinfo=None)
    return now - finished_at <= AUTO_ROLLBACK_WINDOW
