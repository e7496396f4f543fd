"""Per-environment locks: two reconciles of one environment never interleave.

In-process locks serve the embedded mode (one process); Redis locks serve several
worker processes. A Redis lock expires, so a killed worker cannot hold it forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from controller.errors import TemporaryError


class Locks(Protocol):
    def hold(self, key: str) -> AbstractAsyncContextManager[None]: ...


class InProcessLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            yield


class RedisLocks:
    def __init__(self, client: Redis, *, ttl_seconds: float = 900.0, wait_seconds: float = 900.0):
        self._client = client
        self._ttl = ttl_seconds
        self._wait = wait_seconds

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._client.lock(
            f"railyard:lock:{key}", timeout=self._ttl, blocking_timeout=self._wait
        )
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise TemporaryError(f"cannot take lock {key}: {exc}") from exc
        if not acquired:
            raise TemporaryError(f"lock {key} still held after {self._wait:g}s")
        try:
            yield
        finally:
            try:
                await lock.release()
            except LockError as exc:
                # Expired while we worked: the next reconcile re-plans from what it observes.
                raise TemporaryError(f"lock {key} expired during the reconcile") from exc
