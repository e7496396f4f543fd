"""Triggers that run beside the API: the poller and the periodic resync.

Both only enqueue; the worker decides what to do. The poller lists remote refs
(no fetch) and enqueues when a tracked branch moved, so pushes are deployed even
when every webhook is lost. The resync enqueues every environment, which is how
drift gets found and repaired.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Protocol

from controller.credentials import RepositoryCredentials
from controller.errors import RailyardError
from controller.records import note_pending
from controller.source.base import Source
from controller.source.routing import is_working_tree
from controller.store.crypto import SecretBox
from controller.store.db import Database
from controller.store.models import App
from controller.store.repositories import AppRepository, EnvironmentRepository

log = logging.getLogger(__name__)


class TriggerQueue(Protocol):
    async def enqueue(self, environment_id: str, *, reason: str) -> None: ...

    async def prune(self) -> None: ...


def is_local_repository(url: str) -> bool:
    return url.startswith(("file://", "/"))


class Triggers:
    def __init__(
        self,
        database: Database,
        source: Source,
        queue: TriggerQueue,
        *,
        poll_seconds: float,
        resync_seconds: float,
        local_poll_seconds: float = 2.0,
        git_timeout: float = 30.0,
        concurrency: int = 8,
        credentials: RepositoryCredentials | None = None,
        secret_box: SecretBox | None = None,
    ) -> None:
        self.db = database
        self.source = source
        self.queue = queue
        self.poll_seconds = poll_seconds
        self.local_poll_seconds = min(local_poll_seconds, poll_seconds)
        self.resync_seconds = resync_seconds
        self.git_timeout = git_timeout
        self.credentials = credentials
        self.secret_box = secret_box
        self._slots = asyncio.Semaphore(concurrency)

    async def poll_once(self, *, local: bool | None = None) -> int:
        """Check apps' tracked branches; return how many reconciles were enqueued.

        ``local`` picks repositories on this machine (True), remote ones (False) or all."""
        async with self.db.session() as session:
            apps = await AppRepository(session, None).list()
        apps = [app for app in apps if not is_working_tree(app.repo_url)]  # watched, not polled
        if local is not None:
            apps = [app for app in apps if is_local_repository(app.repo_url) == local]
        moved = await asyncio.gather(*(self._poll_app(app) for app in apps))
        return sum(moved)

    async def poll_local(self) -> int:
        return await self.poll_once(local=True)

    async def poll_remote(self) -> int:
        return await self.poll_once(local=False)

    async def _poll_app(self, app: App) -> bool:
        async with self._slots:
            if self.credentials is not None:
                self.credentials.load(app, self.secret_box)
            try:
                head = await asyncio.wait_for(
                    self.source.remote_head(app.repo_url, app.branch), self.git_timeout
                )
            except (RailyardError, TimeoutError) as exc:
                message = getattr(exc, "message", None) or f"timed out after {self.git_timeout:g}s"
                await self._set_app(app, source_error=message)
                log.warning("poll %s: %s", app.name, message)
                return False
        if head is None:
            await self._set_app(app, source_error=f"branch '{app.branch}' not found")
            return False
        if head == app.last_seen_revision:
            return False
        async with self.db.session() as session:
            environment = await EnvironmentRepository(session, None).get_by_name(
                app.id, "production"
            )
            await AppRepository(session, None).update(
                app, last_seen_revision=head, source_error=None
            )
        if environment is None:
            return False
        log.info("poll: %s moved to %s", app.name, head[:12])
        await note_pending(self.db, environment.id, head, "poll")
        await self.queue.enqueue(environment.id, reason="poll")
        return True

    async def resync_once(self) -> int:
        async with self.db.session() as session:
            environments = await EnvironmentRepository(session, None).list_all()
        for environment in environments:
            await self.queue.enqueue(environment.id, reason="resync")
        await self.queue.prune()
        return len(environments)

    async def _set_app(self, app: App, **fields: object) -> None:
        async with self.db.session() as session:
            await AppRepository(session, None).update(app, **fields)

    async def run(self, stop: asyncio.Event) -> None:
        # A local repository cannot send webhooks and costs nothing to list, so it is
        # polled often; remote ones every poll interval (webhooks make them immediate).
        await asyncio.gather(
            _every(self.local_poll_seconds, self.poll_local, stop, "poll local"),
            _every(self.poll_seconds, self.poll_remote, stop, "poll"),
            _every(self.resync_seconds, self.resync_once, stop, "resync"),
        )


async def _every(
    seconds: float, job: Callable[[], Awaitable[int]], stop: asyncio.Event, name: str
) -> None:
    """Run ``job`` every ``seconds`` (with 10% jitter so many apps do not poll in step)."""
    while not stop.is_set():
        try:
            await job()
        except RailyardError as exc:
            log.warning("%s failed: %s", name, exc.message)
        except Exception:
            # A trigger loop must outlive one bad round (a database hiccup, say):
            # log it with its traceback and try again next round.
            log.exception("%s round failed", name)
        delay = seconds * random.uniform(0.9, 1.1)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            continue
