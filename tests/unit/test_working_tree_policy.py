"""dir:// apps deploy a directory of the server: allowed on a developer's machine, refusable."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from controller.api.app import create_app
from controller.settings import Settings
from controller.store.db import Database
from tests.unit.test_api import KEY, login


@pytest.mark.parametrize(("allowed", "status"), [(True, 201), (False, 403)])
async def test_working_trees_follow_the_setting(
    tmp_path: Path, db: Database, allowed: bool, status: int
) -> None:
    settings = Settings(home=tmp_path / "home", secret_key=KEY, allow_working_trees=allowed)
    headers = await login(db, settings, "acme")
    app = create_app(settings, database=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        answer = await http.post(
            "/api/v1/apps",
            json={"name": "local", "repo_url": f"dir://{tmp_path}"},
            headers=headers,
        )
    assert answer.status_code == status
    if not allowed:
        assert "RAILYARD_ALLOW_WORKING_TREES" in answer.json()["message"]
