"""Fixtures the unit tests share: a migrated SQLite database of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.store.db import Database, migrate


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """An empty Railyard database (every migration applied), closed afterwards."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'railyard.db'}"
    await migrate(url)
    database = Database(url)
    try:
        yield database
    finally:
        await database.close()
