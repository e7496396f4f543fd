"""Private repositories: an HTTPS token goes in encrypted, reaches git, and never comes out."""

from __future__ import annotations

import httpx
from sqlmodel import select

from controller.api.app import create_app
from controller.credentials import RepositoryCredentials
from controller.secret_routes import make_credentials_router
from controller.settings import Settings
from controller.store.crypto import SecretBox
from controller.store.db import Database
from controller.store.models import App
from tests.unit.test_api import KEY, login, settings

__all__ = ["settings"]  # the API tests' fixtures

TOKEN = "ghp_this-token-must-never-be-shown"
REPO = "https://git.example/acme/private.git"


async def test_token_is_stored_encrypted_used_for_git_and_never_returned(
    settings: Settings, db: Database
) -> None:
    acme, other = await login(db, settings, "acme"), await login(db, settings, "other")
    app = create_app(settings, database=db, extra_routers=[make_credentials_router()])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        await http.post("/api/v1/apps", json={"name": "private", "repo_url": REPO}, headers=acme)
        body = {"username": "x-access-token", "token": TOKEN}
        stored = await http.put("/api/v1/apps/private/credentials", json=body, headers=acme)
        assert stored.status_code == 204
        foreign = await http.put("/api/v1/apps/private/credentials", json=body, headers=other)
        assert foreign.status_code == 404
        shown = await http.get("/api/v1/apps/private", headers=acme)
        assert shown.json()["has_credentials"] is True
        assert TOKEN not in shown.text

        async with db.session() as session:
            row = (await session.exec(select(App))).one()
        assert row.credentials_encrypted and TOKEN not in row.credentials_encrypted
        provider = RepositoryCredentials()
        provider.load(row, SecretBox(KEY))
        assert provider(REPO) == ("x-access-token", TOKEN)
        assert provider("https://git.example/other.git") is None

        removed = await http.delete("/api/v1/apps/private/credentials", headers=acme)
        assert removed.status_code == 204
        async with db.session() as session:
            row = (await session.exec(select(App))).one()
        provider.load(row, SecretBox(KEY))
        assert provider(REPO) is None


async def test_credentials_need_one_complete_kind(settings: Settings, db: Database) -> None:
    acme = await login(db, settings, "acme")
    app = create_app(settings, database=db, extra_routers=[make_credentials_router()])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        await http.post("/api/v1/apps", json={"name": "private", "repo_url": REPO}, headers=acme)
        for body in ({"username": "u"}, {"ssh_private_key": "not a key"}, {}):
            answer = await http.put("/api/v1/apps/private/credentials", json=body, headers=acme)
            assert answer.status_code == 422, body
