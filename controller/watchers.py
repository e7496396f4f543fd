"""The trigger for working-tree apps (``dir://``): a save on disk asks for a reconcile.

What a webhook is to a Git repository, a file-system watch is to a directory on
this machine: ``DirectoryWatchers`` runs one ``watch_directory`` per app whose
``repo_url`` is a ``dir://`` URL, and after each burst of edits (debounced)
records the tree's new content id as pending and enqueues the app's production
environment with reason ``watch``. It only enqueues; the worker decides.

The app list is re-read every ``refresh_seconds``: a new app is watched within
that time, a deleted one's watcher is stopped, and a watch that ended (its
directory was missing or removed) is started again, so creating the directory
later is enough. Such apps are not polled (``Triggers`` skips them).

    watchers = DirectoryWatchers(database, queue)
    task = asyncio.create_task(watchers.run(stop))     # until ``stop`` is set
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from controller.errors import RailyardError, SourceError
from controller.records import note_pending
from controller.source.routing import is_working_tree, working_tree_path
from controller.source.watch import snapshot_directory, watch_directory
from controller.store.db import Database
from controller.store.repositories import PRODUCTION, AppRepository, EnvironmentRepository

log = logging.getLogger(__name__)

REFRESH_SECONDS = 3.0
DEBOUNCE_MS = 300
STOP_TIMEOUT_SECONDS = 5.0


class WatchQueue(Protocol):
    async def enqueue(self, environment_id: str, *, reason: str) -> None: ...


@dataclass
class _Watch:
    """One app's running watch, and how to stop it."""

    path: Path
    task: asyncio.Task[None]
    stop: asyncio.Event = field(default_factory=asyncio.Event)


class DirectoryWatchers:
    def __init__(
        self,
        database: Database,
        queue: WatchQueue,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        self.db = database
        self.queue = queue
        self.refresh_seconds = refresh_seconds
        self.debounce_ms = debounce_ms
        self._watches: dict[str, _Watch] = {}
        self._last_failure: dict[str, str] = {}

    @property
    def watched(self) -> dict[str, Path]:
        """The apps being watched now (app id -> directory); a watch that ended is not."""
        return {
            app_id: watch.path for app_id, watch in self._watches.items() if not watch.task.done()
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Keep one watch per working-tree app until ``stop`` is set; then stop them all."""
        try:
            while not stop.is_set():
                try:
                    await self.refresh()
                except RailyardError as exc:
                    log.warning("watch: reading the apps failed: %s", exc.message)
                except Exception:
                    # Like the poller: one bad round (a database hiccup) must not end watching.
                    log.exception("watch: refresh round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.refresh_seconds)
        finally:
            await self.close()

    async def refresh(self) -> None:
        """Start watches for new apps (or ended watches), stop those of deleted apps."""
        async with self.db.session() as session:
            apps = await AppRepository(session, None).list()
        wanted: dict[str, Path] = {}
        for app in apps:
            if not is_working_tree(app.repo_url):
                continue
            try:
                wanted[app.id] = working_tree_path(app.repo_url)
            except SourceError as exc:
                self._report(app.id, f"app {app.name}: {exc.message}")
        for app_id in [a for a, w in self._watches.items() if wanted.get(a) != w.path]:
            await self._stop(app_id)
            self._last_failure.pop(app_id, None)
        for app_id, path in wanted.items():
            watch = self._watches.get(app_id)
            if watch is not None and watch.task.done():
                self._ended(app_id, watch)
                watch = None
            if watch is None:
                self._start(app_id, path)

    async def close(self) -> None:
        for app_id in list(self._watches):
            await self._stop(app_id)

    def _start(self, app_id: str, path: Path) -> None:
        stop = asyncio.Event()

        async def changed() -> None:
            await self._changed(app_id, path)

        task = asyncio.create_task(
            watch_directory(path, changed, debounce_ms=self.debounce_ms, stop_event=stop),
            name=f"watch {path}",
        )
        self._watches[app_id] = _Watch(path, task, stop)

    async def _stop(self, app_id: str) -> None:
        watch = self._watches.pop(app_id)
        watch.stop.set()
        done, _ = await asyncio.wait({watch.task}, timeout=STOP_TIMEOUT_SECONDS)
        if not done:
            watch.task.cancel()
            await asyncio.gather(watch.task, return_exceptions=True)
        elif not watch.task.cancelled() and watch.task.exception() is not None:
            self._ended(app_id, watch)
        log.info("watch: stopped watching %s", watch.path)

    def _ended(self, app_id: str, watch: _Watch) -> None:
        """Log once why a watch ended (a missing directory, say); it restarts next round."""
        if watch.task.cancelled():
            return
        exc = watch.task.exception()
        if exc is None:
            return
        if isinstance(exc, RailyardError):
            self._report(app_id, f"cannot watch {watch.path}: {exc.message}")
        else:
            log.error("watch: watching %s failed", watch.path, exc_info=exc)

    def _report(self, app_id: str, message: str) -> None:
        if self._last_failure.get(app_id) != message:
            self._last_failure[app_id] = message
            log.warning("watch: %s (retrying every %gs)", message, self.refresh_seconds)

    async def _changed(self, app_id: str, path: Path) -> None:
        """A burst of edits under ``path``: ask for a reconcile unless nothing changed."""
        self._last_failure.pop(app_id, None)
        async with self.db.session() as session:
            environment = await EnvironmentRepository(session, None).get_by_name(app_id, PRODUCTION)
        if environment is None:
            return
        try:
            revision: str | None = await asyncio.to_thread(snapshot_directory, path)
        except (SourceError, OSError) as exc:
            # The reconcile will meet the same problem and record it where the user looks.
            log.warning("watch: cannot snapshot %s: %s", path, exc)
            revision = None
        if revision is not None and revision == environment.current_revision:
            log.debug("watch: %s changed back to what runs (%s)", path, revision)
            return
        if revision is not None:
            await note_pending(self.db, environment.id, revision, "watch")
        log.info("watch: %s changed; reconciling %s", path, environment.id)
        await self.queue.enqueue(environment.id, reason="watch")
