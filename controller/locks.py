"""Per-environment locks: two reconciles of one environment never interleave.

In-process locks serve the embedded mode (one process); Redis locks serve several
worker processes. A Redis lock is a lease: it expires ``ttl_seconds`` after its
holder last renewed it, and a holder renews it every third of that while it works.
So a deploy may take as long as it needs, yet a worker killed mid-deploy (kill -9,
a lost machine) holds up its environment for at most ``ttl_seconds``, not for as
long as the longest deploy could take.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from controller.errors import TemporaryError

log = logging.getLogger(__name__)

LEASE_SECONDS = 20.0
"""How long a dead worker's lock outlives it (a live one renews it every third of that)."""


class Locks(Protocol):
    def hold(self, key: str) -> AbstractAsyncContextManager[None]: ...


class InProcessLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        if lock.locked():
            log.info("%s: another reconcile is running; waiting for it", key)
        async with lock:
            yield


class RedisLocks:
    def __init__(
        self,
        client: Redis,
        *,
        ttl_seconds: float = LEASE_SECONDS,
        wait_seconds: float = 900.0,
        namespace: str = "railyard",
    ) -> None:
        self._client = client
        self._prefix = f"{namespace}:lock:"
        self._ttl = ttl_seconds
        self._wait = wait_seconds

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._client.lock(self._prefix + key, timeout=self._ttl, blocking_timeout=self._wait)
        try:
            acquired = await lock.acquire(blocking=False)
            if not acquired:
                log.info("%s: another worker is reconciling it; waiting for its lock", key)
                acquired = await lock.acquire()
        except RedisError as exc:
            raise TemporaryError(f"cannot take lock {key}: {exc}") from exc
        if not acquired:
            raise TemporaryError(f"lock {key} still held after {self._wait:g}s")
        holder = asyncio.current_task()
        renewal = asyncio.create_task(self._renew(lock, key, holder))
        try:
            yield
        finally:
            renewal.cancel()
            await asyncio.gather(renewal, return_exceptions=True)
            try:
                await lock.release()
            except LockError as exc:
                # Lost while we worked: the next reconcile re-plans from what it observes.
                raise TemporaryError(f"lock {key} expired during the reconcile") from exc
            except RedisError as exc:
                # Redis went away: the lease runs out by itself within its TTL.
                log.warning("%s: could not release the lock (%s); it expires by itself", key, exc)

    async def _renew(self, lock: Lock, key: str, holder: asyncio.Task[object] | None) -> None:
        """Push the expiry back every third of the TTL; a missed renewal or two (Redis
        restarting) is survived. A lease found expired or taken by another worker stops
        its holder: two reconciles of one environment must never run on. What the holder
        left half done is re-planned, as after a crash."""
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                await lock.reacquire()
            except LockError:
                log.error("%s: lock lease lost (expired or taken over); stopping here", key)
                if holder is not None:
                    holder.cancel()
                return
            except RedisError as exc:
                log.warning("%s: could not renew the lock lease: %s", key, exc)
