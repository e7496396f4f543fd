"""DirectoryWatchers on a real file system (watchfiles/inotify) and a real SQLite database:
saving a file in a working-tree app's directory enqueues its production environment."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controller.source.routing import working_tree_url
from controller.source.watch import snapshot_directory
from controller.store.db import Database, migrate
from controller.store.deployments import DeploymentRepository
from controller.store.models import App, DeploymentStatus, Environment, Tenant
from controller.store.repositories import AppRepository, EnvironmentRepository, TenantRepository
from controller.watchers import DirectoryWatchers
from tests.support import async_wait_until

DEBOUNCE_MS = 100
REFRESH_SECONDS = 0.2
DEADLINE_SECONDS = 15
# Proving that a second enqueue does NOT come needs a quiet window: absence cannot be
# polled for. Six debounce periods is far beyond the end of one burst.
QUIET_SECONDS = DEBOUNCE_MS * 6 / 1000


@dataclass
class RecordingQueue:
    enqueued: list[tuple[str, str]] = field(default_factory=list)

    async def enqueue(self, environment_id: str, *, reason: str) -> None:
        self.enqueued.append((environment_id, reason))

    async def count(self, at_least: int) -> None:
        async def reached() -> bool:
            return len(self.enqueued) >= at_least

        await async_wait_until(
            reached, timeout=DEADLINE_SECONDS, interval=0.05, what=f"{at_least} enqueue(s)"
        )


@dataclass
class World:
    db: Database
    tenant: Tenant
    queue: RecordingQueue
    watchers: DirectoryWatchers
    base: Path

    async def add_app(self, name: str, repo_url: str) -> tuple[App, Environment]:
        async with self.db.session() as session:
            app = await AppRepository(session, self.tenant.id).create(
                name, repo_url, webhook_secret_encrypted="sealed"
            )
            environment = await EnvironmentRepository(session, None).get_by_name(
                app.id, "production"
            )
        assert environment is not None
        return app, environment

    async def delete_app(self, app: App) -> None:
        async with self.db.session() as session:
            await AppRepository(session, self.tenant.id).delete(app)

    async def watching(self, app: App, expected: bool = True) -> None:
        async def reached() -> bool:
            return (app.id in self.watchers.watched) == expected

        await async_wait_until(
            reached, timeout=DEADLINE_SECONDS, what=f"{app.name} watched={expected}"
        )

    async def ready(self, directory: Path) -> None:
        """A watch starts shortly after it is created: poke until a change is reported,
        let the pokes settle, and start the test from zero enqueues."""
        probe = directory / "probe.txt"

        async def noticed() -> bool:
            probe.write_bytes(os.urandom(8))
            return bool(self.queue.enqueued)

        await async_wait_until(noticed, timeout=DEADLINE_SECONDS, interval=0.3, what="ready")
        await asyncio.sleep(QUIET_SECONDS)
        self.queue.enqueued.clear()


def project(base: Path, name: str) -> Path:
    directory = base / name
    (directory / "www").mkdir(parents=True)
    (directory / "paas.yaml").write_text("version: 1\n")
    (directory / "www/index.html").write_text("v1\n")
    return directory


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'railyard.db'}"
    await migrate(url)
    db = Database(url)
    queue = RecordingQueue()
    watchers = DirectoryWatchers(
        db, queue, refresh_seconds=REFRESH_SECONDS, debounce_ms=DEBOUNCE_MS
    )
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        async with db.session() as session:
            tenant = await TenantRepository(session, None).create("acme")
        task = asyncio.create_task(watchers.run(stop))
        yield World(db, tenant, queue, watchers, tmp_path)
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, timeout=DEADLINE_SECONDS)
        await db.close()
    assert watchers.watched == {}, "run() stops every watch when it ends"


async def test_a_save_enqueues_the_production_environment_once(world: World) -> None:
    directory = project(world.base, "shop")
    app, production = await world.add_app("shop", working_tree_url(directory))
    await world.watching(app)
    await world.ready(directory)

    for version in range(5):  # an editor's burst: several writes in a row
        (directory / "www/index.html").write_text(f"v{version + 2}\n")

    await world.queue.count(1)
    await asyncio.sleep(QUIET_SECONDS)
    assert world.queue.enqueued == [(production.id, "watch")]
    async with world.db.session() as session:
        unfinished = await DeploymentRepository(session, None).unfinished(production.id)
    pending = {row.revision: row for row in unfinished}[snapshot_directory(directory)]
    assert pending.status == DeploymentStatus.PENDING.value and pending.trigger == "watch"


async def test_saving_what_already_runs_enqueues_nothing(world: World) -> None:
    directory = project(world.base, "shop")
    app, production = await world.add_app("shop", working_tree_url(directory))
    await world.watching(app)
    await world.ready(directory)
    async with world.db.session() as session:
        await EnvironmentRepository(session, None).update(
            production, current_revision=snapshot_directory(directory)
        )

    (directory / "www/index.html").write_text("v1\n")  # the same bytes saved again
    (directory / ".git").mkdir()
    (directory / ".git/index").write_text("noise")
    await asyncio.sleep(QUIET_SECONDS)
    (directory / "www/index.html").write_text("v2\n")
    await world.queue.count(1)
    await asyncio.sleep(QUIET_SECONDS)
    assert world.queue.enqueued == [(production.id, "watch")]


async def test_only_working_tree_apps_are_watched_and_deleting_one_stops_its_watch(
    world: World,
) -> None:
    git_app, _ = await world.add_app("api", "https://git.example.com/acme/api.git")
    directory = project(world.base, "shop")
    app, _ = await world.add_app("shop", working_tree_url(directory))
    await world.watching(app)
    assert git_app.id not in world.watchers.watched

    await world.delete_app(app)
    await world.watching(app, expected=False)
    (directory / "www/index.html").write_text("after delete\n")
    await asyncio.sleep(QUIET_SECONDS)
    assert world.queue.enqueued == []


async def test_a_directory_created_after_the_app_is_watched_once_it_exists(
    world: World,
) -> None:
    app, production = await world.add_app("later", working_tree_url(world.base / "later"))
    await asyncio.sleep(REFRESH_SECONDS * 3)  # a few rounds failing to watch a missing dir

    directory = project(world.base, "later")
    await world.watching(app)
    await world.ready(directory)
    (directory / "www/index.html").write_text("v2\n")
    await world.queue.count(1)
    assert world.queue.enqueued == [(production.id, "watch")]
