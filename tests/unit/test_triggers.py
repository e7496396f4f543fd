"""The poller: a moved branch enqueues exactly once; a broken repository delays no other."""

from __future__ import annotations

import asyncio

import pytest

from controller.source.fake import FakeSource
from controller.store.db import Database
from controller.store.deployments import DeploymentRepository
from controller.store.repositories import AppRepository, EnvironmentRepository, TenantRepository
from controller.triggers import Triggers

GOOD = "https://git.example/acme/good.git"
BROKEN = "https://git.example/acme/broken.git"
SLOW = "https://git.example/acme/slow.git"


class RecordingQueue:
    def __init__(self) -> None:
        self.enqueued: list[tuple[str, str]] = []
        self.prunes = 0

    async def enqueue(self, environment_id: str, *, reason: str) -> None:
        self.enqueued.append((environment_id, reason))

    async def prune(self) -> None:
        self.prunes += 1


class HangingSource(FakeSource):
    """A remote that never answers for one URL."""

    async def remote_head(self, repo_url: str, branch: str) -> str | None:
        if repo_url == SLOW:
            await asyncio.Event().wait()
        return await super().remote_head(repo_url, branch)


@pytest.fixture
async def db(db: Database) -> Database:
    """Tenant acme with apps on a good, a broken and a slow remote."""
    async with db.session() as session:
        tenant = await TenantRepository(session, None).create("acme")
        for name, repo in (("good", GOOD), ("broken", BROKEN), ("slow", SLOW)):
            await AppRepository(session, tenant.id).create(name, repo, webhook_secret_encrypted="x")
    return db


async def production_of(db: Database, name: str) -> str:
    async with db.session() as session:
        apps = await AppRepository(session, None).list()
        app = next(a for a in apps if a.name == name)
        environment = await EnvironmentRepository(session, None).get_by_name(app.id, "production")
    assert environment is not None
    return environment.id


async def test_a_moved_branch_enqueues_once_and_records_a_pending_deployment(db: Database) -> None:
    source, queue = HangingSource(), RecordingQueue()
    source.unreachable.add(BROKEN)
    triggers = Triggers(db, source, queue, poll_seconds=60, resync_seconds=60, git_timeout=0.2)
    head = source.push(GOOD, {"paas.yaml": "version: 1"})

    assert await triggers.poll_once() == 1
    assert await triggers.poll_once() == 0, "nothing moved since"
    good = await production_of(db, "good")
    assert queue.enqueued == [(good, "poll")]
    async with db.session() as session:
        [pending] = await DeploymentRepository(session, None).list_for_environment(good)
    assert (pending.revision, pending.status, pending.trigger) == (head, "pending", "poll")

    source.push(GOOD, {"README": "again"})
    assert await triggers.poll_once() == 1


async def test_unreachable_and_hanging_remotes_are_recorded_and_delay_nobody(
    db: Database,
) -> None:
    source, queue = HangingSource(), RecordingQueue()
    source.unreachable.add(BROKEN)
    triggers = Triggers(db, source, queue, poll_seconds=60, resync_seconds=60, git_timeout=0.2)
    source.push(GOOD, {"paas.yaml": "version: 1"})
    async with asyncio.timeout(5):
        assert await triggers.poll_once() == 1
    async with db.session() as session:
        errors = {a.name: a.source_error for a in await AppRepository(session, None).list()}
    assert errors["good"] is None
    assert errors["broken"] and "unreachable" in errors["broken"]
    assert errors["slow"] and "timed out" in errors["slow"]


async def test_resync_enqueues_every_environment_and_a_prune(db: Database) -> None:
    queue = RecordingQueue()
    triggers = Triggers(db, FakeSource(), queue, poll_seconds=60, resync_seconds=60)
    assert await triggers.resync_once() == 3
    assert {reason for _, reason in queue.enqueued} == {"resync"}
    assert queue.prunes == 1
