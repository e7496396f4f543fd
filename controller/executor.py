"""Runs a Plan against the ports, step by step, re-observing where it matters.

Every step first checks what is already true and skips it, so running a plan again
after a crash is safe. If a step fails, the replicas this run started are removed and
the error propagates: routes were not switched yet, so the old version keeps serving.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from controller.errors import HealthCheckFailed, RailyardError, ReleaseFailed
from controller.health import Prober, ProbeResult
from controller.plan import (
    AwaitHealthy,
    BuildImage,
    Drain,
    Plan,
    PullImage,
    RemoveContainer,
    RunRelease,
    StartReplica,
    Step,
    SwitchRoutes,
)
from controller.router.base import Router
from controller.runtime.base import Runtime
from controller.source.base import Source
from controller.state import DesiredEnvironment, DesiredService, ObservedContainer, RouteTarget

EventSink = Callable[[str, str, str], Awaitable[None]]
"""(reason, message, level) -> recorded as a deployment event."""

BUILD_LOG_CHUNK_LINES = 200
"""At most this many build lines per event (the rest of a burst is summarised by the tail)."""
BUILD_LOG_INTERVAL = 1.0


@dataclass
class ExecutionContext:
    desired: DesiredEnvironment
    repo_url: str
    events: EventSink
    started: list[str] = field(default_factory=list)
    """Containers this run started and has not routed yet (removed if the run fails)."""
    doomed: frozenset[str] = frozenset()
    """Containers the plan removes: never routed to, never waited for."""
    new_replicas: set[str] = field(default_factory=set)


class BuildOutput:
    """Build output on its way into the deployment's events, a chunk per second, so
    ``railyard deploy --follow`` shows a build as it runs (and a failed one's last lines)."""

    def __init__(self, events: EventSink) -> None:
        self._events = events
        self._lines: deque[str] = deque(maxlen=BUILD_LOG_CHUNK_LINES)
        self._pending = 0

    def append(self, line: str) -> None:
        self._lines.append(line.rstrip())
        self._pending += 1

    async def flush(self) -> None:
        if not self._pending:
            return
        fresh = list(self._lines)[-self._pending :]
        self._pending = 0
        await self._events("build_output", "\n".join(fresh), "info")

    async def pump(self) -> None:
        """Flush once a second (wall-clock cadence, independent of the deploy's clock)."""
        while True:
            await asyncio.sleep(BUILD_LOG_INTERVAL)
            await self.flush()


class Executor:
    def __init__(
        self,
        runtime: Runtime,
        router: Router,
        source: Source,
        prober: Prober,
        *,
        health_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        release_timeout: float = 600.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.router = router
        self.source = source
        self.prober = prober
        self.health_timeout = health_timeout
        self.stop_timeout = stop_timeout
        self.release_timeout = release_timeout
        self._sleep = sleep
        self._monotonic = monotonic

    async def execute(
        self, plan: Plan, desired: DesiredEnvironment, repo_url: str, events: EventSink
    ) -> None:
        doomed = frozenset(s.container_id for s in plan.steps if isinstance(s, RemoveContainer))
        context = ExecutionContext(desired, repo_url, events, doomed=doomed)
        try:
            for step in plan.steps:
                await events("step_started", str(step), "info")
                await self._run(step, context)
        except RailyardError:
            await self._remove_started(context)
            raise

    async def _run(self, step: Step, context: ExecutionContext) -> None:
        match step:
            case BuildImage():
                await self._build(step, context)
            case PullImage():
                if not await self.runtime.image_exists(step.image):
                    await self.runtime.pull_image(step.image, lambda line: None)
            case RunRelease():
                await self._release(step, context)
            case StartReplica():
                await self._start(step, context)
            case AwaitHealthy():
                await self._await_healthy(step.service, step.existing, context)
            case SwitchRoutes():
                await self._switch(step, context)
            case Drain():
                await self._sleep(step.seconds)
            case RemoveContainer():
                await self.runtime.remove_container(
                    step.container_id, stop_timeout=self.stop_timeout
                )

    async def _build(self, step: BuildImage, context: ExecutionContext) -> None:
        if await self.runtime.image_exists(step.image):
            await context.events("build_skipped", f"{step.image} already exists", "info")
            return
        archive = await self.source.archive(
            context.repo_url, context.desired.revision, step.build.context
        )
        output = BuildOutput(context.events)
        pump = asyncio.create_task(output.pump())
        try:
            await self.runtime.build_image(step.image, archive, step.build, output.append)
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            await output.flush()

    async def _release(self, step: RunRelease, context: ExecutionContext) -> None:
        command = step.service.release or ()
        result = await self.runtime.run_task(
            context.desired.key,
            step.service,
            command,
            context.desired.revision,
            timeout=self.release_timeout,
            peers=await self._current_generation(context),
        )
        if result.pinned:
            reached = "; ".join(f"{name} at {', '.join(at)}" for name, at in result.pinned.items())
            message = f"release of {step.service.name} reaches {reached} (current replicas only)"
            await context.events("release_pinned", message, "info")
        level = "info" if result.exit_code == 0 else "error"
        await context.events("release_output", result.output.strip(), level)
        if result.exit_code != 0:
            raise ReleaseFailed(
                f"release of {step.service.name} exited with {result.exit_code}",
                output=result.output,
            )

    async def _current_generation(self, context: ExecutionContext) -> dict[str, tuple[str, ...]]:
        """Per service, its running replicas at the desired spec that the plan keeps.

        Until the plan's last step the old replicas keep their service's name on the
        network too, so a release pinned to these cannot reach an old one (a rollback's
        release once reached the broken db it was replacing). A service with none yet is
        left to DNS."""
        wanted = {service.name: service.spec_hash for service in context.desired.services}
        current: dict[str, list[str]] = {}
        for container in await self._observe(context):
            if (
                wanted.get(container.service) == container.spec_hash
                and container.running
                and container.id not in context.doomed
            ):
                current.setdefault(container.service, []).append(container.id)
        return {service: tuple(ids) for service, ids in sorted(current.items())}

    async def _observe(self, context: ExecutionContext) -> list[ObservedContainer]:
        return await self.runtime.list_containers(context.desired.key)

    async def _start(self, step: StartReplica, context: ExecutionContext) -> None:
        for container in await self._observe(context):
            if (
                container.service == step.service.name
                and container.spec_hash == step.service.spec_hash
                and container.replica == step.replica
                and container.running
            ):
                return
        container = await self.runtime.start_container(
            context.desired.key, step.service, context.desired.revision, step.replica
        )
        context.started.append(container.id)
        context.new_replicas.add(container.id)
        where = f"on {container.address}" if container.address else "(no published port)"
        await context.events("replica_started", f"{container.name} {where}", "info")

    async def _await_healthy(
        self, service: DesiredService, existing: tuple[str, ...], context: ExecutionContext
    ) -> None:
        check = service.healthcheck
        deadline = self._monotonic() + check.start_period + self.health_timeout
        last = ProbeResult(False, "not probed yet")
        while True:
            watched = context.new_replicas | set(existing)
            replicas = [
                c
                for c in await self._observe(context)
                if c.service == service.name
                and c.spec_hash == service.spec_hash
                and (c.id in watched or (c.running and c.id not in context.doomed))
            ]
            results = [await self.prober.probe(c, check) for c in replicas]
            if replicas and all(r.ok for r in results):
                detail = "; ".join(r.detail for r in results)
                await context.events("healthy", f"{service.name}: {detail}", "info")
                return
            failing = [(c, r) for c, r in zip(replicas, results, strict=True) if not r.ok]
            if failing:
                last = failing[0][1]
            exited = [c for c, _ in failing if c.state in ("exited", "dead")]
            if exited or self._monotonic() >= deadline:
                culprit = exited[0] if exited else (failing[0][0] if failing else None)
                log_tail = await self.runtime.container_logs(culprit.id) if culprit else ""
                why = "exited" if exited else f"within {self.health_timeout:g}s"
                raise HealthCheckFailed(
                    f"{service.name} did not become healthy ({why}): {last.detail}",
                    last_result=last.detail,
                    log_tail=log_tail,
                )
            await self._sleep(check.interval)

    async def _switch(self, step: SwitchRoutes, context: ExecutionContext) -> None:
        containers = await self._observe(context)
        targets = [
            RouteTarget(
                host=route.host,
                path=route.path,
                service=route.service,
                strip_prefix=route.strip_prefix,
                upstreams=tuple(
                    sorted(
                        c.address
                        for c in containers
                        if c.service == route.service
                        and c.spec_hash == route.spec_hash
                        and c.running
                        and c.address
                        and c.id not in context.doomed
                    )
                ),
            )
            for route in step.routes
        ]
        await self.router.apply(context.desired.key, targets)
        # From here on the new replicas serve traffic: a later failure must not remove them.
        context.started.clear()
        for target in targets:
            upstreams = ", ".join(target.upstreams) or "nothing (503)"
            await context.events(
                "route_switched", f"{target.host}{target.path} -> {upstreams}", "info"
            )

    async def _remove_started(self, context: ExecutionContext) -> None:
        for container_id in context.started:
            await self.runtime.remove_container(container_id, stop_timeout=self.stop_timeout)
            await context.events(
                "rolled_back", f"removed new replica {container_id[:12]}", "warning"
            )
