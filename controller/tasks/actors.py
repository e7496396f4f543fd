"""The actors: they take ids, never rows, and are idempotent (level-triggered).

A lost or duplicated message is harmless: the next trigger or the periodic resync
computes the same plan again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

import dramatiq

from controller.errors import PermanentError, TemporaryError
from controller.reconciler import Outcome

log = logging.getLogger(__name__)

QUEUE = "railyard"
# Exponential backoff with jitter (Dramatiq's Retries middleware): 1 s doubling to 5 min.
RETRY_OPTIONS = {"max_retries": 8, "min_backoff": 1_000, "max_backoff": 300_000}


class Reconciles(Protocol):
    async def reconcile(self, environment_id: str, *, trigger: str = ...) -> Outcome: ...

    async def prune_orphans(self) -> list[str]: ...


class ReconcilerSource(Protocol):
    """Where actors get their reconciler (``WorkerContext`` builds it in the worker's loop)."""

    async def reconciler(self) -> Reconciles: ...


@dataclass(frozen=True)
class Actors:
    reconcile: dramatiq.Actor[[str, str], Awaitable[None]]
    prune: dramatiq.Actor[[], Awaitable[None]]


def register_actors(broker: dramatiq.Broker, context: ReconcilerSource) -> Actors:
    async def reconcile(environment_id: str, trigger: str = "resync") -> None:
        reconciler = await context.reconciler()
        try:
            outcome = await reconciler.reconcile(environment_id, trigger=trigger)
        except TemporaryError as exc:
            raise _retry_later(f"reconcile {environment_id[:8]} ({trigger})", exc) from exc
        log.info(
            "reconcile %s (%s): %s %s", environment_id[:8], trigger, outcome.status, outcome.message
        )

    actor: dramatiq.Actor[[str, str], Awaitable[None]] = dramatiq.Actor(
        reconcile,
        broker=broker,
        actor_name="reconcile",
        queue_name=QUEUE,
        priority=0,
        options={**RETRY_OPTIONS, "throws": (PermanentError,)},
    )

    async def prune_orphans() -> None:
        reconciler = await context.reconciler()
        try:
            await reconciler.prune_orphans()
        except TemporaryError as exc:
            raise _retry_later("prune", exc) from exc

    prune: dramatiq.Actor[[], Awaitable[None]] = dramatiq.Actor(
        prune_orphans,
        broker=broker,
        actor_name="prune_orphans",
        queue_name=QUEUE,
        priority=10,
        options={**RETRY_OPTIONS, "throws": (PermanentError,)},
    )
    return Actors(reconcile=actor, prune=prune)


def _retry_later(what: str, exc: TemporaryError) -> dramatiq.Retry:
    """An expected outage (database, Redis, Docker or a remote restarting) is one warning
    line, not a traceback: the message is retried with backoff and jitter all the same.
    Anything unexpected still reaches Dramatiq's log with its traceback."""
    log.warning("%s: %s; will retry", what, exc.message)
    return dramatiq.Retry(exc.message)


class DramatiqQueue:
    """The API's and triggers' way to ask for a reconcile (``ReconcileQueue``)."""

    def __init__(self, actors: Actors) -> None:
        self._actors = actors

    async def enqueue(self, environment_id: str, *, reason: str) -> None:
        await asyncio.to_thread(self._actors.reconcile.send, environment_id, reason)

    async def prune(self) -> None:
        """Remove containers and routes of environments that no longer exist."""
        await asyncio.to_thread(self._actors.prune.send)
