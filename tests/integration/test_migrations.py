"""Migrations: ``upgrade head`` builds exactly the models' schema, on SQLite and PostgreSQL.

"Exactly" is Alembic's autogenerate comparison coming back empty: a model change
without a migration (or a migration that drifted from the models) fails here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, Table, create_engine, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import controller.store.models  # noqa: F401  (registers the tables)
from controller.store.db import Database, alembic_config, downgrade, migrate
from controller.store.deployments import DeploymentRepository
from controller.store.repositories import AppRepository, EnvironmentRepository, TenantRepository
from tests.integration.test_store_postgres import temporary_database

HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
TABLES = {
    "tenant",
    "user",
    "apitoken",
    "domain",
    "app",
    "environment",
    "deployment",
    "deployment_event",
    "webhook_delivery",
    "secret",
}


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def _state(connection: Connection) -> tuple[set[str], str | None]:
    tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
    return tables, MigrationContext.configure(connection).get_current_revision()


async def _check_round_trip(url: str) -> None:
    """upgrade → models match → downgrade to nothing → upgrade again (and again: a no-op)."""
    engine = create_async_engine(url)
    try:
        await migrate(url)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            assert await connection.run_sync(_state) == (TABLES, HEAD)
        await downgrade(url, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_state) == (set(), None)
        await migrate(url)
        await migrate(url)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()


async def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    await _check_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'railyard.db'}")


@pytest.mark.postgres
async def test_postgres_schema_matches_the_models(postgres_url: str) -> None:
    async with temporary_database(postgres_url) as url:
        await _check_round_trip(url)


async def _migrate_together(url: str) -> None:
    """Several starters (API, workers, triggers) may call migrate() at once; none may fail."""
    await asyncio.gather(migrate(url), migrate(url), migrate(url))
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_state) == (TABLES, HEAD)
    finally:
        await engine.dispose()


async def test_concurrent_migrations_on_sqlite(tmp_path: Path) -> None:
    await asyncio.wait_for(_migrate_together(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"), 60)


@pytest.mark.postgres
async def test_concurrent_migrations_on_postgres(postgres_url: str) -> None:
    async with temporary_database(postgres_url) as url:
        await asyncio.wait_for(_migrate_together(url), 60)


def test_a_model_change_without_a_migration_is_noticed(tmp_path: Path) -> None:
    """The comparison is not vacuous: what the database lacks shows up as differences."""
    engine = create_engine(f"sqlite:///{tmp_path / 'drift.db'}")
    try:
        with engine.begin() as connection:
            SQLModel.metadata.create_all(connection)
            connection.exec_driver_sql("DROP INDEX ix_app_name")
        models = MetaData()
        for table in SQLModel.metadata.tables.values():
            table.to_metadata(models)
        Table("app", models, Column("colour", String()), extend_existing=True)
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), models)
    finally:
        engine.dispose()
    kinds = {diff[0] for diff in diffs if isinstance(diff, tuple)}
    assert {"add_column", "add_index"} <= kinds


async def _duplicates_settled_by_0006(url: str) -> None:
    """Pending notices recorded twice before 0006 (the webhook and the poller at once):
    upgrading keeps the oldest pending and marks the others superseded."""
    await migrate(url)
    await downgrade(url, "0005")
    database = Database(url)
    try:
        async with database.session() as session:
            tenant = await TenantRepository(session, None).create("acme")
            app = await AppRepository(session, tenant.id).create(
                "shop", "file:///srv/shop.git", webhook_secret_encrypted="x"
            )
            environment = await EnvironmentRepository(session, tenant.id).get_by_name(
                app.id, "production"
            )
            assert environment is not None, "an app is created with its production environment"
            deployments = DeploymentRepository(session, None)
            for trigger in ("webhook", "poll", "resync"):
                await deployments.create(environment, revision="abc", trigger=trigger)
            await deployments.create(environment, revision="def", trigger="poll")
        await migrate(url)
        async with database.session() as session:
            rows = await DeploymentRepository(session, None).list_for_environment(environment.id)
    finally:
        await database.close()
    by_status = sorted((row.revision, row.trigger, row.status) for row in rows)
    assert by_status == [
        ("abc", "poll", "superseded"),
        ("abc", "resync", "superseded"),
        ("abc", "webhook", "pending"),
        ("def", "poll", "pending"),
    ]


async def test_0006_settles_duplicate_pending_notices_on_sqlite(tmp_path: Path) -> None:
    await _duplicates_settled_by_0006(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")


@pytest.mark.postgres
async def test_0006_settles_duplicate_pending_notices_on_postgres(postgres_url: str) -> None:
    async with temporary_database(postgres_url) as url:
        await _duplicates_settled_by_0006(url)
