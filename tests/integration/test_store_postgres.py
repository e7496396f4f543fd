"""The repository behaviours again, on PostgreSQL through asyncpg.

The run gets its own database (random name, created on the ``test`` database's
server, schema made by ``migrate()``) and drops it at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import make_url

from controller.store.db import Database, migrate
from tests.unit.test_repositories import RepositoryBehaviours

pytestmark = pytest.mark.postgres


async def create_database(server_url: str) -> str:
    """Create a fresh, empty database on ``server_url``'s server; return its URL."""
    name = f"railyard_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    name = make_url(url).database
    await _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(url: str, statement: str) -> None:
    """Run ``statement`` from the server's ``test`` database (never from the one it drops)."""
    admin_url = make_url(url).set(drivername="postgresql", database="test")
    connection = await asyncpg.connect(admin_url.render_as_string(hide_password=False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def temporary_database(server_url: str) -> AsyncIterator[str]:
    url = await create_database(server_url)
    try:
        yield url
    finally:
        await drop_database(url)


@pytest.fixture(scope="module")
def migrated_url(postgres_url: str) -> Iterator[str]:
    """One migrated database for the module (each behaviour makes its own tenants).

    Module-scoped, so it runs its coroutines on loops of its own: nothing made
    here (no engine, no connection) outlives the ``asyncio.run`` that made it.
    """
    url = asyncio.run(create_database(postgres_url))
    try:
        asyncio.run(migrate(url))
        yield url
    finally:
        asyncio.run(drop_database(url))


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Database]:
    database = Database(migrated_url)
    try:
        yield database
    finally:
        await database.close()


class TestRepositoriesOnPostgres(RepositoryBehaviours):
    pass
