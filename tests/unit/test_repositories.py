"""Repositories on SQLite (schema made by ``migrate()``, as in production).

``RepositoryBehaviours`` holds every behaviour; ``TestRepositoriesOnSqlite`` runs
it here and ``tests/integration/test_store_postgres.py`` runs it on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError, NoSuchModuleError

from controller.errors import ConflictError, NotFoundError, TemporaryError, ValidationError
from controller.store.crypto import SecretBox
from controller.store.db import Database
from controller.store.deployments import DeliveryRepository, DeploymentRepository
from controller.store.models import App, DeploymentStatus, Environment, Tenant
from controller.store.repositories import (
    AppRepository,
    EnvironmentRepository,
    TenantRepository,
    TokenRepository,
    UserRepository,
)

# Nothing listens on port 1: connecting is refused at once, with no server needed.
UNREACHABLE = "postgresql+asyncpg://nobody@127.0.0.1:1/railyard"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def make_tenant(db: Database) -> Tenant:
    async with db.session() as session:
        return await TenantRepository(session, None).create(unique("tenant"))


async def make_app(db: Database, tenant: Tenant, name: str = "web", branch: str = "main") -> App:
    async with db.session() as session:
        return await AppRepository(session, tenant.id).create(
            name, "https://git.example/web.git", branch=branch, webhook_secret_encrypted="sealed"
        )


async def production_of(db: Database, app: App) -> Environment:
    async with db.session() as session:
        environment = await EnvironmentRepository(session, app.tenant_id).get_by_name(
            app.id, "production"
        )
    assert environment is not None
    return environment


class RepositoryBehaviours:
    """Needs a ``db`` fixture: a migrated, otherwise possibly shared, database."""

    async def test_tenant_names_are_unique(self, db: Database) -> None:
        tenant = await make_tenant(db)
        async with db.session() as session:
            repo = TenantRepository(session, None)
            assert await repo.get(tenant.id) == tenant
            assert await repo.get_by_name(tenant.name) == tenant
            with pytest.raises(ConflictError, match="already exists"):
                await repo.create(tenant.name)

    async def test_users_belong_to_the_scoping_tenant(self, db: Database) -> None:
        tenant, other = await make_tenant(db), await make_tenant(db)
        email = f"{unique('owner')}@example.com"
        async with db.session() as session:
            user = await UserRepository(session, tenant.id).create(email)
        async with db.session() as session:
            assert user.tenant_id == tenant.id and user.role == "owner"
            assert await UserRepository(session, tenant.id).get_by_email(email) == user
            assert await UserRepository(session, other.id).get_by_email(email) is None
            assert await UserRepository(session, other.id).get(user.id) is None
            with pytest.raises(ConflictError):
                await UserRepository(session, other.id).create(email)
        async with db.session() as session:
            with pytest.raises(ValidationError, match="tenant scope"):
                await UserRepository(session, None).create(unique("x") + "@example.com")

    async def test_tokens_are_revoked_once(self, db: Database) -> None:
        tenant = await make_tenant(db)
        now = datetime(2030, 1, 1, tzinfo=UTC)
        async with db.session() as session:
            user = await UserRepository(session, tenant.id).create(unique("u") + "@example.com")
            token = await TokenRepository(session, tenant.id).create(
                user.id, now + timedelta(days=1), name="ci"
            )
        async with db.session() as session:
            repo = TokenRepository(session, tenant.id)
            await repo.revoke(token.id, now)
            await repo.revoke(token.id, now + timedelta(hours=1))
        async with db.session() as session:
            stored = await TokenRepository(session, None).get(token.id)
            assert stored is not None
            assert stored.name == "ci"
            assert stored.expires_at == now + timedelta(days=1)
            assert stored.revoked_at == now
            with pytest.raises(NotFoundError):
                await TokenRepository(session, tenant.id).revoke(str(uuid.uuid4()), now)

    async def test_creating_an_app_creates_its_production_environment(self, db: Database) -> None:
        tenant = await make_tenant(db)
        app = await make_app(db, tenant, branch="trunk")
        async with db.session() as session:
            environments = await EnvironmentRepository(session, tenant.id).list_for_app(app.id)
        assert [(e.name, e.kind, e.ref, e.tenant_id) for e in environments] == [
            ("production", "production", "trunk", tenant.id)
        ]

    async def test_app_names_are_unique_per_tenant_only(self, db: Database) -> None:
        tenant, other = await make_tenant(db), await make_tenant(db)
        await make_app(db, tenant, "shop")
        with pytest.raises(ConflictError, match="app 'shop' already exists"):
            await make_app(db, tenant, "shop")
        assert (await make_app(db, other, "shop")).tenant_id == other.id

    async def test_another_tenant_sees_nothing(self, db: Database) -> None:
        tenant, intruder = await make_tenant(db), await make_tenant(db)
        app = await make_app(db, tenant)
        environment = await production_of(db, app)
        async with db.session() as session:
            deployment = await DeploymentRepository(session, tenant.id).create(
                environment, revision="a" * 40, trigger="push"
            )
        async with db.session() as session:
            apps = AppRepository(session, intruder.id)
            assert await apps.get(app.id) is None
            assert await apps.get_by_name(app.name) is None
            assert await apps.list() == []
            with pytest.raises(NotFoundError, match=f"app '{app.id}' not found"):
                await apps.get_or_raise(app.id)
            with pytest.raises(NotFoundError):
                await apps.update(app, branch="evil")
            with pytest.raises(NotFoundError):
                await apps.delete(app)
            environments = EnvironmentRepository(session, intruder.id)
            assert await environments.get(environment.id) is None
            assert await environments.list_for_app(app.id) == []
            assert await environments.list_all() == []
            with pytest.raises(NotFoundError):
                await environments.create(app, "pr-1", kind="preview", ref="x", pr_number=1)
            deployments = DeploymentRepository(session, intruder.id)
            assert await deployments.get(deployment.id) is None
            assert await deployments.list_for_app(app.id) == []
            assert await deployments.events(deployment.id) == []
            with pytest.raises(NotFoundError):
                await deployments.add_event(deployment, "hijack")
        async with db.session() as session:
            system = AppRepository(session, None)
            assert await system.get(app.id) == app
            assert app.id in {a.id for a in await system.list()}

    async def test_app_update_and_unknown_fields(self, db: Database) -> None:
        tenant = await make_tenant(db)
        app = await make_app(db, tenant)
        async with db.session() as session:
            repo = AppRepository(session, None)
            await repo.update(app, last_seen_revision="b" * 40, source_error=None)
            with pytest.raises(ValidationError, match="no field 'colour'"):
                await repo.update(app, colour="blue")
            with pytest.raises(ValidationError, match="cannot be changed"):
                await repo.update(app, tenant_id="someone-else")
        async with db.session() as session:
            stored = await AppRepository(session, tenant.id).get_by_name_or_raise(app.name)
        assert stored.last_seen_revision == "b" * 40

    async def test_environments_list_production_first_then_previews(self, db: Database) -> None:
        tenant = await make_tenant(db)
        app = await make_app(db, tenant)
        async with db.session() as session:
            repo = EnvironmentRepository(session, tenant.id)
            for number in (12, 3):
                await repo.create(app, f"pr-{number}", kind="preview", ref="x", pr_number=number)
            with pytest.raises(ConflictError):
                await repo.create(app, "pr-3", kind="preview", ref="y", pr_number=3)
        async with db.session() as session:
            names = [
                e.name for e in await EnvironmentRepository(session, None).list_for_app(app.id)
            ]
        assert names == ["production", "pr-3", "pr-12"]

    async def test_environment_update_stamps_updated_at(self, db: Database) -> None:
        tenant = await make_tenant(db)
        environment = await production_of(db, await make_app(db, tenant))
        async with db.session() as session:
            await EnvironmentRepository(session, None).update(
                environment, current_revision="c" * 40
            )
        async with db.session() as session:
            stored = await EnvironmentRepository(session, tenant.id).get_or_raise(environment.id)
        assert stored.current_revision == "c" * 40
        assert stored.updated_at > stored.created_at

    async def test_deployments_newest_first_and_events_oldest_first(self, db: Database) -> None:
        tenant = await make_tenant(db)
        environment = await production_of(db, await make_app(db, tenant))
        async with db.session() as session:
            repo = DeploymentRepository(session, tenant.id)
            created = [
                await repo.create(environment, revision=f"{n:040d}", trigger="push")
                for n in range(5)
            ]
            for reason in ("planned", "built", "started", "healthy", "switched"):
                await repo.add_event(created[-1], reason, f"{reason} ok")
        async with db.session() as session:
            repo = DeploymentRepository(session, tenant.id)
            newest_first = [d.id for d in await repo.list_for_app(environment.app_id)]
            latest = await repo.list_for_environment(environment.id, limit=2)
            events = await repo.events(created[-1].id)
        assert newest_first == [d.id for d in reversed(created)]
        assert [d.id for d in latest] == [created[4].id, created[3].id]
        assert [e.reason for e in events] == ["planned", "built", "started", "healthy", "switched"]
        assert events[0].message == "planned ok" and events[0].level == "info"

    async def test_unfinished_and_status_updates(self, db: Database) -> None:
        tenant = await make_tenant(db)
        environment = await production_of(db, await make_app(db, tenant))
        started = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
        async with db.session() as session:
            repo = DeploymentRepository(session, None)
            done = await repo.create(environment, revision=None, trigger="push")
            running = await repo.create(
                environment, revision=None, trigger="push", status=DeploymentStatus.RUNNING
            )
            pending = await repo.create(environment, revision=None, trigger="redeploy")
            await repo.update(
                done,
                status=DeploymentStatus.SUCCEEDED,
                started_at=started.replace(tzinfo=None),
                finished_at=started + timedelta(seconds=30),
            )
            with pytest.raises(ValidationError, match="unknown deployment status"):
                await repo.update(pending, status="exploded")
        async with db.session() as session:
            repo = DeploymentRepository(session, tenant.id)
            unfinished = await repo.unfinished(environment.id)
            stored = await repo.get_or_raise(done.id)
        assert [d.id for d in unfinished] == [running.id, pending.id]
        assert stored.status == "succeeded"
        assert stored.started_at == started
        assert stored.finished_at == started + timedelta(seconds=30)

    async def test_delivery_record_is_idempotent(self, db: Database) -> None:
        tenant = await make_tenant(db)
        app = await make_app(db, tenant)
        fields = {"provider": "github", "event": "push", "ref": "refs/heads/main"}
        async with db.session() as session:
            repo = DeliveryRepository(session, None)
            first = await repo.record(
                app, delivery_id="d-1", revision="1" * 40, outcome="queued", **fields
            )
            again = await repo.record(
                app, delivery_id="d-1", revision="2" * 40, outcome="ignored", **fields
            )
            other = await repo.record(
                app, delivery_id="d-2", revision=None, outcome="queued", **fields
            )
        async with db.session() as session:
            deliveries = await DeliveryRepository(session, tenant.id).list_for_app(app.id)
        assert (first, again, other) == (True, False, True)
        assert [(d.delivery_id, d.outcome) for d in deliveries] == [
            ("d-2", "queued"),
            ("d-1", "queued"),
        ]

    async def test_racing_duplicate_deliveries_record_once(self, db: Database) -> None:
        tenant = await make_tenant(db)
        app = await make_app(db, tenant)

        async def deliver() -> bool:
            async with db.session() as session:
                return await DeliveryRepository(session, None).record(
                    app,
                    provider="github",
                    delivery_id="same",
                    event="push",
                    ref=None,
                    revision=None,
                    outcome="queued",
                )

        outcomes = await asyncio.gather(*(deliver() for _ in range(4)))
        assert sorted(outcomes) == [False, False, False, True]

    async def test_deleting_an_app_deletes_everything_under_it(self, db: Database) -> None:
        tenant = await make_tenant(db)
        app, keep = await make_app(db, tenant, "doomed"), await make_app(db, tenant, "kept")
        for target in (app, keep):
            environment = await production_of(db, target)
            async with db.session() as session:
                deployments = DeploymentRepository(session, tenant.id)
                deployment = await deployments.create(environment, revision=None, trigger="push")
                await deployments.add_event(deployment, "planned")
                await DeliveryRepository(session, tenant.id).record(
                    target,
                    provider="github",
                    delivery_id="d",
                    event="push",
                    ref=None,
                    revision=None,
                    outcome="queued",
                )
        async with db.session() as session:
            await AppRepository(session, tenant.id).delete(app)
        async with db.session() as session:
            assert await AppRepository(session, tenant.id).get(app.id) is None
            assert await EnvironmentRepository(session, None).list_for_app(app.id) == []
            assert await DeploymentRepository(session, None).list_for_app(app.id) == []
            assert await DeliveryRepository(session, None).list_for_app(app.id) == []
            assert len(await DeploymentRepository(session, None).list_for_app(keep.id)) == 1

    async def test_deleting_an_environment_deletes_its_history(self, db: Database) -> None:
        tenant = await make_tenant(db)
        app = await make_app(db, tenant)
        async with db.session() as session:
            environments = EnvironmentRepository(session, tenant.id)
            preview = await environments.create(app, "pr-7", kind="preview", ref="f", pr_number=7)
            deployment = await DeploymentRepository(session, tenant.id).create(
                preview, revision=None, trigger="pull_request"
            )
            await DeploymentRepository(session, tenant.id).add_event(deployment, "planned")
        async with db.session() as session:
            await EnvironmentRepository(session, None).delete(preview)
        async with db.session() as session:
            assert await EnvironmentRepository(session, None).get(preview.id) is None
            assert await DeploymentRepository(session, None).get(deployment.id) is None
            assert await DeploymentRepository(session, None).events(deployment.id) == []
            assert [
                e.name for e in await EnvironmentRepository(session, None).list_for_app(app.id)
            ] == ["production"]

    async def test_a_failed_unit_of_work_leaves_nothing_behind(self, db: Database) -> None:
        tenant = await make_tenant(db)
        with pytest.raises(RuntimeError):
            async with db.session() as session:
                await AppRepository(session, tenant.id).create(
                    "half", "/srv/half.git", webhook_secret_encrypted="sealed"
                )
                raise RuntimeError("interrupted")
        async with db.session() as session:
            assert await AppRepository(session, tenant.id).get_by_name("half") is None
            assert await EnvironmentRepository(session, tenant.id).list_all() == []

    async def test_foreign_keys_are_enforced(self, db: Database) -> None:
        tenant = await make_tenant(db)
        with pytest.raises(IntegrityError):
            async with db.session() as session:
                now = datetime.now(UTC)
                orphan = Environment(
                    tenant_id=tenant.id, app_id=str(uuid.uuid4()), created_at=now, updated_at=now
                )
                session.add(orphan)


class TestRepositoriesOnSqlite(RepositoryBehaviours):
    pass


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(db: Database) -> None:
    async with db.engine.connect() as connection:
        journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
        foreign_keys = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        busy = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    assert (journal, foreign_keys) == ("wal", 1)
    assert busy is not None and busy >= 1000


async def test_an_unreachable_database_is_a_temporary_error() -> None:
    database = Database(UNREACHABLE)
    try:
        assert await database.ping() is False
        with pytest.raises(TemporaryError, match="database unavailable"):
            async with database.session() as session:
                await TenantRepository(session, None).get_by_name("default")
    finally:
        await database.close()


def test_the_engine_is_built_on_first_use_not_before() -> None:
    database = Database("nosuchdialect+nosuchdriver://nowhere/none")
    with pytest.raises(NoSuchModuleError):
        _ = database.engine


def test_secret_box_round_trips_and_hides_the_plaintext() -> None:
    box = SecretBox("k" * 48)
    sealed = box.encrypt("hunter2-webhook-secret")
    assert "hunter2" not in sealed
    assert box.decrypt(sealed) == "hunter2-webhook-secret"
    assert box.encrypt("same") != box.encrypt("same")


@pytest.mark.parametrize("ciphertext", ["not-a-token", ""])
def test_secret_box_rejects_garbage(ciphertext: str) -> None:
    with pytest.raises(ValidationError, match="cannot decrypt"):
        SecretBox("k" * 48).decrypt(ciphertext)


def test_secret_box_under_another_key_cannot_decrypt() -> None:
    sealed = SecretBox("k" * 48).encrypt("secret")
    with pytest.raises(ValidationError, match="another signing key"):
        SecretBox("j" * 48).decrypt(sealed)
