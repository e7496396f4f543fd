"""The async engine, unit-of-work sessions and schema migration.

``Database(url)`` is the one way code reaches the database: ``async with
db.session() as session`` commits on success and rolls back on error. Nothing
connects until the first session (the engine is built lazily, never at import).

SQLite runs in WAL mode with foreign keys on and a busy timeout, and in the
``sqlite3`` driver's default ("legacy") transaction mode: reads run outside a
transaction until the first write, which keeps "database is locked" errors
rare with several writers. The price is that a SAVEPOINT opened before a
session's first write does not nest inside the transaction, so repositories use
``INSERT … ON CONFLICT DO NOTHING`` rather than savepoints for idempotent
inserts.

``migrate(url)`` runs Alembic's ``upgrade head`` from code: the Alembic config
is built here and points at the ``migrations`` folder inside this package, so
no ``alembic.ini`` is needed at run time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from controller.errors import TemporaryError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
MIGRATION_LOCK_ID = 0x5241494C  # "RAIL": a PostgreSQL advisory lock held while migrating
_alembic_lock = threading.Lock()  # Alembic's migration context is process-global


class Database:
    """One engine per process (and per event loop); sessions are units of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Yield a session; commit when the block succeeds, roll back when it raises.

        Losing the database (connection refused, "database is locked", pool timeout)
        surfaces as ``TemporaryError``, so callers retry instead of failing for good.
        """
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            try:
                # Connect up front: drivers raise plain OSError (refused, timed out) when
                # connecting, which is only safe to read as "database down" right here.
                await session.connection()
            except (OSError, DBAPIError, PoolTimeoutError) as exc:
                log.warning("cannot connect to the database: %s", type(exc).__name__)
                raise TemporaryError("database unavailable, try again shortly") from exc
            try:
                yield session
                await session.commit()
            except (OperationalError, InterfaceError, PoolTimeoutError) as exc:
                await _rollback_quietly(session)
                log.warning("database unavailable: %s", type(exc).__name__)
                raise TemporaryError("database unavailable, try again shortly") from exc
            except BaseException:
                await _rollback_quietly(session)
                raise

    async def ping(self) -> bool:
        """True when a trivial query answers; never raises."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("database ping failed: %s", type(exc).__name__)
            return False
        return True

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def make_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


async def _rollback_quietly(session: AsyncSession) -> None:
    """Roll back after a failure without hiding the original error behind a second one."""
    try:
        await session.rollback()
    except SQLAlchemyError as exc:
        log.warning("rollback after a failed unit of work also failed: %s", type(exc).__name__)


def alembic_config(url: str) -> Config:
    """An Alembic config built in code: the packaged migrations, for ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


async def migrate(url: str) -> None:
    """Bring the schema at ``url`` up to the newest migration (``alembic upgrade head``)."""
    await _run_alembic(url, lambda config: command.upgrade(config, "head"))


async def downgrade(url: str, revision: str = "base") -> None:
    """Take the schema back to ``revision`` (tests use it to prove migrations reverse)."""
    await _run_alembic(url, lambda config: command.downgrade(config, revision))


async def _run_alembic(url: str, run: Callable[[Config], None]) -> None:
    """Run an Alembic command in a worker thread, on an event loop of its own.

    The caller's loop stays free (``migrate`` works from inside a running loop), and
    one command runs at a time per process, because Alembic's migration context is
    process-global.
    """
    await asyncio.to_thread(_run_alembic_serialized, url, run)


def _run_alembic_serialized(url: str, run: Callable[[Config], None]) -> None:
    with _alembic_lock:
        asyncio.run(_run_alembic_on_connection(url, run))


async def _run_alembic_on_connection(url: str, run: Callable[[Config], None]) -> None:
    """Hand ``migrations/env.py`` one connection, inside one transaction."""
    engine = make_engine(url)
    config = alembic_config(url)

    def run_with(connection: Connection) -> None:
        config.attributes["connection"] = connection
        run(config)

    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # API and workers may start together: one migrates, the others wait
                # (the lock is released when this transaction ends), then find it done.
                await connection.exec_driver_sql(
                    f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"
                )
            await connection.run_sync(run_with)
    finally:
        await engine.dispose()
