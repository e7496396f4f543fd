"""The engine's edge hint: a replica of ours that dies is repaired within seconds.

Railyard is level-triggered (DESIGN.md, "The one idea"): the periodic resync finds a
dead container and repairs it, and it stays the safety net. The engine knows at once,
though, so ``EngineEvents`` follows the runtime's ``watch_exits`` and enqueues the dead
container's environment early, with reason ``resync``: the reconcile that follows is the
one the resync would run, so the repair is recorded as ``drift`` (or only reported, with
the app's ``self_heal`` off). A user trigger would deploy the branch head instead, which
is not what a dead container asks for.

Hints are shaped before they reach the queue:

* debounced per environment: exits less than ``debounce_seconds`` apart (a deploy
  removing three old replicas) ask once, at most ``MAX_DEBOUNCES`` debounces after the
  first;
* spaced per environment (``spacing``): when an environment keeps asking (a replica that
  dies again after each repair), the gap between its early reconciles doubles up to
  ``max_gap_seconds`` (the resync interval); a quiet spell resets it;
* left to the resync when no converged environment of ours is concerned: another
  installation's containers, an environment no longer on record (a deleted app: pruning
  removes what is left) or one never deployed (a failed first deploy removes its
  replicas, and that exit must not retry the deploy back to back).

When the engine's stream fails, ``run`` watches again after an exponential backoff with
jitter, with one warning line each time; exits in between are the resync's to find.

    events = EngineEvents(database, runtime, queue, instance=settings.instance_id())
    task = asyncio.create_task(events.run(stop))     # until ``stop`` is set
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

from controller.errors import RailyardError
from controller.runtime.base import ContainerExit, Runtime
from controller.state import EnvironmentKey
from controller.store.db import Database
from controller.store.repositories import AppRepository, EnvironmentRepository, TenantRepository

log = logging.getLogger(__name__)

REASON = "resync"
"""What an exit asks for: what the periodic resync would do, only sooner."""
DEBOUNCE_SECONDS = 1.0
MAX_DEBOUNCES = 5
MAX_GAP_SECONDS = 30.0
RECONNECT_MIN_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 30.0


class ExitQueue(Protocol):
    async def enqueue(self, environment_id: str, *, reason: str) -> None: ...


def spacing(gap: float, since_last: float | None, *, floor: float, cap: float) -> float:
    """How long after its previous early reconcile an environment's next one may run.

    ``gap`` is the one kept last time; ``since_last`` the seconds from the previous early
    reconcile to the first exit of this burst (None: there was none). Quiet for longer
    than ``cap`` beyond its gap, an environment starts again from no gap; asking sooner,
    it doubles the gap, from ``floor`` up to ``cap``."""
    if since_last is None or since_last > gap + cap:
        return 0.0
    return min(max(gap * 2, floor), cap)


def reconnect_delay(failures: int, *, low: float, high: float) -> float:
    """Exponential backoff with jitter: ``low`` doubling per failure up to ``high``, then
    a random half of it taken off, so that many watchers do not reconnect in step."""
    base = min(low * 2.0 ** min(failures - 1, 30), high)
    return base * random.uniform(0.5, 1.0)


@dataclass
class _Hint:
    """One environment's hints: the burst waiting to be sent, and when the last one went."""

    exit: ContainerExit | None = None
    """The burst's latest exit; None when nothing waits."""
    first: float = 0.0
    due: float = 0.0
    sent: float | None = None
    gap: float = 0.0


class EngineEvents:
    def __init__(
        self,
        database: Database,
        runtime: Runtime,
        queue: ExitQueue,
        *,
        instance: str,
        debounce_seconds: float = DEBOUNCE_SECONDS,
        max_gap_seconds: float = MAX_GAP_SECONDS,
        reconnect_min_seconds: float = RECONNECT_MIN_SECONDS,
        reconnect_max_seconds: float = RECONNECT_MAX_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = database
        self.runtime = runtime
        self.queue = queue
        self.instance = instance
        self.debounce_seconds = debounce_seconds
        self.max_gap_seconds = max_gap_seconds
        self.reconnect_min_seconds = reconnect_min_seconds
        self.reconnect_max_seconds = reconnect_max_seconds
        self._clock = clock
        self._hints: dict[EnvironmentKey, _Hint] = {}
        self._senders: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Hints not handled yet: waiting out their debounce or gap, or being enqueued."""
        return len(self._senders)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the engine's exits until ``stop`` is set, watching again after failures."""
        failures = 0
        try:
            while not stop.is_set():
                started = self._clock()
                problem: str | None = "the engine ended its event stream"
                try:
                    if not await _unless_stopped(self.follow(), stop):
                        return
                except RailyardError as exc:
                    problem = exc.message
                except Exception:
                    # Like the other trigger loops: one bad round must not end watching.
                    log.exception("engine events: watching failed")
                    problem = None
                if self._clock() - started > self.reconnect_max_seconds:
                    failures = 0  # it had been watching for a while: a new outage
                failures += 1
                delay = reconnect_delay(
                    failures, low=self.reconnect_min_seconds, high=self.reconnect_max_seconds
                )
                if problem is not None:
                    log.warning("engine events: %s; watching again in %.1fs", problem, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
        finally:
            await self.close()

    async def follow(self) -> None:
        """Notice every exit the runtime reports, until its stream ends or fails."""
        async with aclosing(self.runtime.watch_exits()) as exits:
            async for found in exits:
                self.notice(found)

    def notice(self, found: ContainerExit) -> None:
        """Schedule (or push back, while exits keep coming) the environment's hint."""
        key = found.environment
        if key.instance != self.instance:
            return
        now = self._clock()
        hint = self._hints.setdefault(key, _Hint())
        if hint.exit is not None:
            latest = hint.first + self.debounce_seconds * MAX_DEBOUNCES
            hint.due = max(hint.due, min(now + self.debounce_seconds, latest))
            hint.exit = found
            return
        since_last = None if hint.sent is None else now - hint.sent
        hint.gap = spacing(
            hint.gap, since_last, floor=2 * self.debounce_seconds, cap=self.max_gap_seconds
        )
        hint.exit, hint.first = found, now
        hint.due = now + self.debounce_seconds
        if hint.sent is not None:
            hint.due = max(hint.due, hint.sent + hint.gap)
        sender = asyncio.create_task(self._send_when_due(key, hint), name=f"hint {key}")
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)

    async def close(self) -> None:
        """Drop the hints still waiting (the resync covers them)."""
        for sender in list(self._senders):
            sender.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)

    async def _send_when_due(self, key: EnvironmentKey, hint: _Hint) -> None:
        # The deadline moves while exits keep coming, so sleep until it stops moving.
        while True:
            wait = hint.due - self._clock()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        found, hint.exit, hint.sent = hint.exit, None, self._clock()
        if found is None:
            return
        try:
            environment_id = await self._converged_environment(key)
            if environment_id is None:
                log.debug("engine events: %s is not a deployed environment here", key)
                if hint.exit is None:
                    self._hints.pop(key, None)
                return
            log.info(
                "engine events: %s %s (%s); reconciling %s",
                found.container,
                found.event,
                key,
                environment_id[:8],
            )
            await self.queue.enqueue(environment_id, reason=REASON)
        except RailyardError as exc:
            log.warning("engine events: cannot ask to reconcile %s: %s", key, exc.message)
        except Exception:
            log.exception("engine events: asking to reconcile %s failed", key)

    async def _converged_environment(self, key: EnvironmentKey) -> str | None:
        """The id of the environment ``key`` names, if it exists and something converged."""
        async with self.db.session() as session:
            tenant = await TenantRepository(session, None).get_by_name(key.tenant)
            if tenant is None:
                return None
            app = await AppRepository(session, tenant.id).get_by_name(key.app)
            if app is None:
                return None
            environment = await EnvironmentRepository(session, None).get_by_name(app.id, key.env)
        if environment is None or environment.current_revision is None:
            return None
        return environment.id


async def _unless_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Run ``work`` to its end (True; what it raised is raised), or until ``stop`` is set
    (False; ``work`` is cancelled and has closed what it held)."""
    working = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        working.cancel()
        stopping.cancel()
        await asyncio.wait({working, stopping})
    if working.cancelled():
        return False
    working.result()
    return True
