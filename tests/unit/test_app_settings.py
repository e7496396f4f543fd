"""PATCH /apps/{app}: self_heal and branch change; bad values are refused and named."""

from __future__ import annotations

import httpx

from controller.api.app import create_app
from controller.settings import Settings
from controller.store.db import Database
from tests.unit.test_api import login, settings

__all__ = ["settings"]  # the API tests' fixtures


async def test_self_heal_and_branch_can_be_changed(settings: Settings, db: Database) -> None:
    acme, other = await login(db, settings, "acme"), await login(db, settings, "other")
    transport = httpx.ASGITransport(app=create_app(settings, database=db))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        await http.post(
            "/api/v1/apps", json={"name": "shop", "repo_url": "file:///srv/shop.git"}, headers=acme
        )
        changed = await http.patch(
            "/api/v1/apps/shop", json={"self_heal": False, "branch": "release"}, headers=acme
        )
        assert changed.status_code == 200
        body = changed.json()
        assert (body["self_heal"], body["branch"]) == (False, "release")
        [production] = body["environments"]
        assert production["ref"] == "release"

        bad = await http.patch("/api/v1/apps/shop", json={"branch": "no..dots"}, headers=acme)
        assert bad.status_code == 422 and "branch" in bad.text
        unknown = await http.patch("/api/v1/apps/shop", json={"colour": "red"}, headers=acme)
        assert unknown.status_code == 422 and "colour" in unknown.text
        foreign = await http.patch("/api/v1/apps/shop", json={"self_heal": True}, headers=other)
        assert foreign.status_code == 404
