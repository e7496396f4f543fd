"""Per-environment locks: two reconciles of one environment never interleave.

A reconcile that finds its environment busy does not wait for it (a waiting worker
thread could serve other environments meanwhile): it leaves a *request* with the
trigger that asked (``request``), and the running reconcile takes it when it ends
(``take_request``) and runs once more. However many triggers arrive during a deploy,
one more reconcile follows it: the last commit wins.

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


REQUEST_SECONDS = 900
"""A request left by a worker that died with it expires (the resync covers it anyway)."""


class Locks(Protocol):
    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Wait for ``key``, then hold it."""
        ...

    def try_hold(self, key: str) -> AbstractAsyncContextManager[bool]:
        """Hold ``key`` (True) if nobody does, else hold nothing (False) at once."""
        ...

    async def request(self, key: str, trigger: str) -> None:
        """Ask whoever holds ``key`` to run once more when done. A ``resync`` never
        replaces a request of another trigger (a push or redeploy asks for more)."""
        ...

    async def take_request(self, key: str) -> str | None:
        """The pending request's trigger, cleared; None when nobody asked."""
        ...


def merged_trigger(own: str, requested: str | None) -> str:
    """What a run that also answers a pending request should count as."""
    if requested is None or own != "resync":
        return own
    return requested


class InProcessLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._requests: dict[str, str] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(key, asyncio.Lock()):
            yield

    @asynccontextmanager
    async def try_hold(self, key: str) -> AsyncIterator[bool]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        if lock.locked():
            yield False
            return
        async with lock:
            yield True

    async def request(self, key: str, trigger: str) -> None:
        if trigger != "resync" or key not in self._requests:
            self._requests[key] = trigger

    async def take_request(self, key: str) -> str | None:
        return self._requests.pop(key, None)


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
        self._requests = f"{namespace}:again:"
        self._ttl = ttl_seconds
        self._wait = wait_seconds

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._lock(key)
        try:
            acquired = await lock.acquire(blocking=False)
            if not acquired:
                log.info("%s: another worker is holding it; waiting for its lock", key)
                acquired = await lock.acquire()
        except RedisError as exc:
            raise TemporaryError(f"cannot take lock {key}: {exc}") from exc
        if not acquired:
            raise TemporaryError(f"lock {key} still held after {self._wait:g}s")
        async with self._holding(lock, key):
            yield

    @asynccontextmanager
    async def try_hold(self, key: str) -> AsyncIterator[bool]:
        lock = self._lock(key)
        try:
            acquired = await lock.acquire(blocking=False)
        except RedisError as exc:
            raise TemporaryError(f"cannot take lock {key}: {exc}") from exc
        if not acquired:
            yield False
            return
        async with self._holding(lock, key):
            yield True

    async def request(self, key: str, trigger: str) -> None:
        try:
            await self._client.set(
                self._requests + key, trigger, ex=REQUEST_SECONDS, nx=trigger == "resync"
            )
        except RedisError as exc:
            raise TemporaryError(f"cannot leave a request for {key}: {exc}") from exc

    async def take_request(self, key: str) -> str | None:
        try:
            value = await self._client.getdel(self._requests + key)
        except RedisError as exc:
            raise TemporaryError(f"cannot read the requests for {key}: {exc}") from exc
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def _lock(self, key: str) -> Lock:
        return self._client.lock(self._prefix + key, timeout=self._ttl, blocking_timeout=self._wait)

    @asynccontextmanager
    async def _holding(self, lock: Lock, key: str) -> AsyncIterator[None]:
        """While held: renew the lease; at the end, release it."""
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
