"""Per-environment locks: two reconciles of one environment never interleave, across processes."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from redis.asyncio import Redis

from controller.errors import TemporaryError
from controller.locks import InProcessLocks, Locks, RedisLocks


async def _overlaps(locks_a: Locks, locks_b: Locks, key: str, other: str) -> list[str]:
    timeline: list[str] = []
    holding = asyncio.Event()

    async def hold(locks: Locks, name: str, lock_key: str, first: bool) -> None:
        if not first:
            await holding.wait()
        async with locks.hold(lock_key):
            timeline.append(f"{name} in")
            if first:
                holding.set()
                await asyncio.sleep(0.3)  # the "reconcile" holding the lock
            timeline.append(f"{name} out")

    await asyncio.gather(
        hold(locks_a, "a", key, True),
        hold(locks_b, "b", key, False),
        hold(locks_b, "c", other, False),
    )
    return timeline


async def test_in_process_locks_serialise_one_key_only() -> None:
    locks = InProcessLocks()
    timeline = await _overlaps(locks, locks, "env:1", "env:2")
    assert timeline.index("a out") < timeline.index("b in")
    assert timeline.index("c out") < timeline.index("a out"), "another environment is not held up"


async def test_redis_locks_serialise_two_workers(redis_url: str) -> None:
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    key = f"env:{uuid.uuid4()}"
    try:
        timeline = await _overlaps(
            RedisLocks(first, wait_seconds=10), RedisLocks(second, wait_seconds=10), key, key + "x"
        )
    finally:
        await first.aclose()
        await second.aclose()
    assert timeline.index("a out") < timeline.index("b in")
    assert timeline.index("c out") < timeline.index("a out")


async def test_a_lock_held_by_a_dead_worker_expires(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    key = f"env:{uuid.uuid4()}"
    try:
        # A worker killed while holding the lock never releases it: the TTL does.
        await client.set(f"railyard:lock:{key}", "dead-worker", px=300)
        async with asyncio.timeout(5):
            async with RedisLocks(client, wait_seconds=5).hold(key):
                pass
    finally:
        await client.aclose()


async def test_a_reconcile_longer_than_the_lease_keeps_its_lock(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The lease is renewed while its holder works: a deploy may outlast the TTL."""
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    key = f"env:{uuid.uuid4()}"
    timeline: list[str] = []
    holding = asyncio.Event()

    async def long_reconcile() -> None:
        async with RedisLocks(first, ttl_seconds=0.3).hold(key):
            timeline.append("long in")
            holding.set()
            await asyncio.sleep(1.2)  # four lease periods of work
            timeline.append("long out")

    async def waiting_reconcile() -> None:
        await holding.wait()
        async with RedisLocks(second, ttl_seconds=0.3, wait_seconds=10).hold(key):
            timeline.append("waiting in")

    caplog.set_level(logging.INFO, logger="controller.locks")
    try:
        await asyncio.gather(long_reconcile(), waiting_reconcile())
    finally:
        await first.aclose()
        await second.aclose()
    assert timeline == ["long in", "long out", "waiting in"]
    assert "another worker is holding it; waiting" in caplog.text


async def test_a_killed_holders_lease_runs_out_and_the_next_reconcile_proceeds(
    redis_url: str,
) -> None:
    """A worker killed mid-deploy stops renewing: its lease lapses within the TTL."""
    client = Redis.from_url(redis_url)
    key = f"env:{uuid.uuid4()}"
    try:
        dead = client.lock(f"railyard:lock:{key}", timeout=0.5)
        assert await dead.acquire(blocking=False)  # taken, never renewed or released
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(5):
            async with RedisLocks(client, ttl_seconds=0.5, wait_seconds=5).hold(key):
                waited = loop.time() - started
    finally:
        await client.aclose()
    assert waited < 2.0, f"waited {waited:.2f}s for a lease of 0.5s"


async def test_installations_sharing_one_redis_do_not_share_locks(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    key = f"env:{uuid.uuid4()}"
    try:
        async with RedisLocks(client, namespace="railyard-a").hold(key):
            async with asyncio.timeout(5):
                async with RedisLocks(client, namespace="railyard-b", wait_seconds=0.2).hold(key):
                    pass
    finally:
        await client.aclose()


async def test_a_holder_whose_lease_was_taken_over_is_stopped(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis lost the key (a restart without persistence) and another worker took it:
    the first must not go on reconciling beside the second."""
    client = Redis.from_url(redis_url)
    key = f"env:{uuid.uuid4()}"
    steps: list[str] = []

    async def reconcile() -> None:
        async with RedisLocks(client, ttl_seconds=0.3).hold(key):
            steps.append("holding")
            await client.set(f"railyard:lock:{key}", "another-worker")
            for _ in range(50):  # a long deploy, step by step
                await asyncio.sleep(0.1)
                steps.append("step")

    try:
        async with asyncio.timeout(5):
            with pytest.raises(TemporaryError, match="expired during the reconcile"):
                await asyncio.create_task(reconcile())
        assert await client.get(f"railyard:lock:{key}") == b"another-worker", "not released"
    finally:
        await client.delete(f"railyard:lock:{key}")
        await client.aclose()
    assert steps[0] == "holding" and len(steps) < 10, "stopped within a renewal period"
    assert "lease lost" in caplog.text


async def test_a_busy_environment_takes_requests_instead_of_waiters(redis_url: str) -> None:
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    key = f"env:{uuid.uuid4()}"
    holder, other = RedisLocks(first), RedisLocks(second)
    try:
        async with holder.try_hold(key) as held:
            assert held
            async with asyncio.timeout(1):  # answered at once, not after the holder
                async with other.try_hold(key) as also_held:
                    assert not also_held
            await other.request(key, "push")
            await other.request(key, "resync")  # asks for less: the push stays
        assert await holder.take_request(key) == "push"
        assert await holder.take_request(key) is None
        async with other.try_hold(key) as held_after:
            assert held_after, "free once the holder ended"
    finally:
        await first.aclose()
        await second.aclose()
