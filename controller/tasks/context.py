"""What a worker needs to reconcile, built lazily inside the worker's event loop.

Database engines and HTTP clients belong to the loop that made them, so the
worker builds its own on the first message instead of sharing the API's.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from controller.credentials import RepositoryCredentials
from controller.executor import Executor
from controller.health import HttpProber
from controller.locks import InProcessLocks, Locks, RedisLocks
from controller.reconciler import Reconciler
from controller.router import make_router
from controller.runtime import make_runtime
from controller.settings import Settings
from controller.source import make_source
from controller.store.crypto import SecretBox
from controller.store.db import Database


class WorkerContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._reconciler: Reconciler | None = None
        self._database: Database | None = None
        self._guard: asyncio.Lock | None = None

    async def reconciler(self) -> Reconciler:
        if self._guard is None:
            self._guard = asyncio.Lock()
        async with self._guard:
            if self._reconciler is None:
                reconciler = self._build()
                # Adopts the edge `railyard up` started (nginx) or prepares the directory.
                await reconciler.router.start()
                self._reconciler = reconciler
            return self._reconciler

    def _build(self) -> Reconciler:
        settings = self.settings
        runtime = make_runtime(settings)
        router = make_router(settings)
        credentials = RepositoryCredentials()
        source = make_source(settings, credentials)
        self._database = Database(settings.resolved_database_url)
        locks: Locks = (
            RedisLocks(Redis.from_url(settings.redis_url), namespace=settings.redis_namespace)
            if settings.redis_url
            else InProcessLocks()
        )
        executor = Executor(
            runtime, router, source, HttpProber(), health_timeout=settings.health_timeout_seconds
        )
        return Reconciler(
            database=self._database,
            runtime=runtime,
            router=router,
            source=source,
            executor=executor,
            locks=locks,
            base_domain=settings.base_domain,
            drain_seconds=settings.drain_seconds,
            instance=settings.instance_id(),
            secret_box=SecretBox(settings.signing_key()),
            credentials=credentials,
        )

    async def close(self) -> None:
        if self._reconciler is not None:
            await self._reconciler.runtime.close()
        if self._database is not None:
            await self._database.close()
