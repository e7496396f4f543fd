"""Secrets through the API: values go in encrypted and never come out; other tenants see 404."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import select

from controller.api.app import create_app
from controller.secret_routes import make_secret_router
from controller.settings import Settings
from controller.store.crypto import SecretBox
from controller.store.db import Database
from controller.store.models import Secret
from controller.store.secrets import SecretRepository
from tests.unit.test_api import KEY, login, settings

__all__ = ["settings"]  # fixtures shared with the API tests

VALUE = "s3cr3t-value-that-must-never-leak"


@pytest.fixture
async def client(
    settings: Settings, db: Database
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], dict[str, str]]]:
    app = create_app(settings, database=db, extra_routers=[make_secret_router()])
    acme, other = await login(db, settings, "acme"), await login(db, settings, "other")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        created = await http.post(
            "/api/v1/apps", json={"name": "shop", "repo_url": "file:///srv/shop.git"}, headers=acme
        )
        assert created.status_code == 201
        yield http, acme, other


async def test_set_list_and_remove_without_ever_showing_the_value(
    client: tuple[httpx.AsyncClient, dict[str, str], dict[str, str]], db: Database
) -> None:
    http, acme, _ = client
    put = await http.put("/api/v1/apps/shop/secrets/API_TOKEN", json={"value": VALUE}, headers=acme)
    assert put.status_code == 204
    listed = await http.get("/api/v1/apps/shop/secrets", headers=acme)
    assert [row["name"] for row in listed.json()] == ["API_TOKEN"]
    assert VALUE not in listed.text
    async with db.session() as session:
        [row] = (await session.exec(select(Secret))).all()
    assert VALUE not in str(row)
    async with db.session() as session:
        values = await SecretRepository(session, None).values(row.app_id, SecretBox(KEY))
    assert values == {"API_TOKEN": VALUE}
    gone = await http.delete("/api/v1/apps/shop/secrets/API_TOKEN", headers=acme)
    assert gone.status_code == 204
    assert (await http.get("/api/v1/apps/shop/secrets", headers=acme)).json() == []
    missing = await http.delete("/api/v1/apps/shop/secrets/API_TOKEN", headers=acme)
    assert missing.status_code == 404


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", "x" * 200])
async def test_bad_names_are_refused(
    client: tuple[httpx.AsyncClient, dict[str, str], dict[str, str]], name: str
) -> None:
    http, acme, _ = client
    answer = await http.put(f"/api/v1/apps/shop/secrets/{name}", json={"value": "v"}, headers=acme)
    assert answer.status_code in (404, 422)
    assert answer.json()["error"] in ("invalid_request", "not_found")


async def test_another_tenant_cannot_see_or_set_them(
    client: tuple[httpx.AsyncClient, dict[str, str], dict[str, str]],
) -> None:
    http, acme, other = client
    await http.put("/api/v1/apps/shop/secrets/A", json={"value": VALUE}, headers=acme)
    assert (await http.get("/api/v1/apps/shop/secrets", headers=other)).status_code == 404
    put = await http.put("/api/v1/apps/shop/secrets/A", json={"value": "x"}, headers=other)
    assert put.status_code == 404
