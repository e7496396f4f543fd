"""``make_broker(settings)``: Redis in production, an in-process broker in embedded mode."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO

from controller.settings import Settings

# Dramatiq's Redis defaults requeue a dead worker's messages only after a 60 s heartbeat
# timeout, found by a maintenance pass that runs on 1 fetch in 1,000: minutes in practice.
# A killed worker's reconcile must come back within seconds.
HEARTBEAT_TIMEOUT_MS = 10_000
MAINTENANCE_CHANCE = 20


def make_broker(settings: Settings) -> dramatiq.Broker:
    broker: dramatiq.Broker
    if settings.redis_url:
        broker = RedisBroker(
            url=settings.redis_url,
            namespace=settings.redis_namespace,
            heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
            maintenance_chance=MAINTENANCE_CHANCE,
        )
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(AsyncIO())
    return broker
