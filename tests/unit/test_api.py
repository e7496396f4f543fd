"""The status API as a client drives it: httpx against ``create_app`` on SQLite.

Authentication details live in ``test_auth.py``; here every request carries a
valid token of tenant "acme" unless the test says otherwise.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from controller.api.app import create_app
from controller.api.auth import issue_token
from controller.api.schemas import check_repo_url
from controller.settings import Settings
from controller.store.crypto import SecretBox
from controller.store.db import Database
from controller.store.deployments import DeliveryRepository, DeploymentRepository
from controller.store.repositories import (
    AppRepository,
    EnvironmentRepository,
    TenantRepository,
    UserRepository,
)

KEY = "test-signing-key-" + "x" * 40


class FakeQueue:
    """Records what the API asked to reconcile."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[str, str]] = []

    async def enqueue(self, environment_id: str, *, reason: str) -> None:
        self.enqueued.append((environment_id, reason))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", secret_key=KEY, public_url="https://ci.example")


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def api(settings: Settings, db: Database, queue: FakeQueue) -> FastAPI:
    return create_app(settings, database=db, queue=queue)


async def login(db: Database, settings: Settings, tenant_name: str) -> dict[str, str]:
    """A tenant with one user, and the headers of a valid token for them."""
    async with db.session() as session:
        tenant = await TenantRepository(session, None).create(tenant_name)
        user = await UserRepository(session, tenant.id).create(f"owner@{tenant_name}.example")
        token = await issue_token(session, user, settings, datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def client(
    api: FastAPI, db: Database, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    headers = await login(db, settings, "acme")
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://railyard.test", headers=headers
    ) as client:
        yield client


@pytest.fixture
async def intruder(
    api: FastAPI, db: Database, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    headers = await login(db, settings, "intruder")
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://railyard.test", headers=headers
    ) as client:
        yield client


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/apps", json={"name": "web", "repo_url": "https://git.example/web.git", **body}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# -- creating and reading apps ----------------------------------------------------------


async def test_create_app_shows_the_webhook_secret_once_and_deploys(
    client: httpx.AsyncClient, queue: FakeQueue, db: Database
) -> None:
    created = await create(client, name="shop", branch="release", manifest_path="deploy/paas.yaml")

    assert created["name"] == "shop"
    assert created["branch"] == "release" and created["manifest_path"] == "deploy/paas.yaml"
    assert created["webhook_url"] == f"https://ci.example/webhooks/github/{created['id']}"
    assert len(created["webhook_secret"]) >= 32
    assert "webhook_secret_encrypted" not in created
    [production] = created["environments"]
    assert (production["name"], production["kind"], production["ref"]) == (
        "production",
        "production",
        "release",
    )
    assert queue.enqueued == [(production["id"], "app created")]
    async with db.session() as session:
        stored = await AppRepository(session, None).get_or_raise(created["id"])
    assert stored.webhook_secret_encrypted != created["webhook_secret"]
    assert SecretBox(KEY).decrypt(stored.webhook_secret_encrypted) == created["webhook_secret"]


async def test_reads_never_show_a_secret(client: httpx.AsyncClient) -> None:
    created = await create(client)
    secret = created["webhook_secret"]

    responses = [
        await client.get("/api/v1/apps"),
        await client.get(f"/api/v1/apps/{created['id']}"),
        await client.get("/api/v1/apps/web"),
        await client.get("/api/v1/apps/web/environments"),
    ]

    for response in responses:
        assert response.status_code == 200
        assert secret not in response.text
        assert "webhook_secret" not in response.text
    listed, by_id, by_name = (r.json() for r in responses[:3])
    assert [app["id"] for app in listed] == [created["id"]]
    assert by_id == by_name == listed[0]
    assert by_id["environments"][0]["name"] == "production"


async def test_same_name_twice_is_a_conflict(client: httpx.AsyncClient) -> None:
    await create(client)
    response = await client.post("/api/v1/apps", json={"name": "web", "repo_url": "/srv/web"})
    assert response.status_code == 409
    assert response.json() == {"error": "conflict", "message": "app 'web' already exists"}


async def test_rotating_the_webhook_secret_shows_the_new_one_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client)

    response = await client.post(f"/api/v1/apps/{created['id']}/webhook-secret/rotate")

    assert response.status_code == 200
    rotated = response.json()
    assert rotated["webhook_secret"] != created["webhook_secret"]
    assert rotated["webhook_url"] == created["webhook_url"]
    async with db.session() as session:
        stored = await AppRepository(session, None).get_or_raise(created["id"])
    assert SecretBox(KEY).decrypt(stored.webhook_secret_encrypted) == rotated["webhook_secret"]
    assert rotated["webhook_secret"] not in (await client.get("/api/v1/apps/web")).text


async def test_delete_app(client: httpx.AsyncClient) -> None:
    created = await create(client)

    response = await client.delete(f"/api/v1/apps/{created['id']}")

    assert response.status_code == 204
    assert (await client.get(f"/api/v1/apps/{created['id']}")).status_code == 404
    assert (await client.get("/api/v1/apps")).json() == []


# -- another tenant ----------------------------------------------------------------------


async def test_another_tenant_gets_404_for_everything(
    client: httpx.AsyncClient, intruder: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client)
    app_id = created["id"]
    async with db.session() as session:
        environment = await EnvironmentRepository(session, None).get_or_raise(
            created["environments"][0]["id"]
        )
        deployment = await DeploymentRepository(session, None).create(
            environment, revision=None, trigger="push"
        )

    attempts = [
        intruder.get(f"/api/v1/apps/{app_id}"),
        intruder.get("/api/v1/apps/web"),
        intruder.get(f"/api/v1/apps/{app_id}/environments"),
        intruder.get(f"/api/v1/apps/{app_id}/deployments"),
        intruder.get(f"/api/v1/apps/{app_id}/deliveries"),
        intruder.get(f"/api/v1/deployments/{deployment.id}"),
        intruder.post(f"/api/v1/apps/{app_id}/redeploy"),
        intruder.post(f"/api/v1/apps/{app_id}/webhook-secret/rotate"),
        intruder.delete(f"/api/v1/apps/{app_id}"),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 404, response.request.url
        assert response.json()["error"] == "not_found"
        assert created["webhook_secret"] not in response.text
    assert (await intruder.get("/api/v1/apps")).json() == []
    assert (await client.get(f"/api/v1/apps/{app_id}")).status_code == 200


# -- deployments, redeploys, deliveries --------------------------------------------------


async def test_deployments_are_listed_newest_first_with_events(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client)
    async with db.session() as session:
        environment = await EnvironmentRepository(session, None).get_or_raise(
            created["environments"][0]["id"]
        )
        repo = DeploymentRepository(session, None)
        ids = []
        for number in range(3):
            deployment = await repo.create(environment, revision=f"{number:040d}", trigger="push")
            ids.append(deployment.id)
        await repo.add_event(deployment, "planned", "start web (1 replica)")
        await repo.add_event(deployment, "failed", "health check timed out", level="error")

    listed = await client.get("/api/v1/apps/web/deployments")
    limited = await client.get("/api/v1/apps/web/deployments", params={"limit": 1})
    detail = await client.get(f"/api/v1/deployments/{ids[-1]}")

    assert [d["id"] for d in listed.json()] == list(reversed(ids))
    assert [d["id"] for d in limited.json()] == [ids[-1]]
    body = detail.json()
    assert body["revision"] == f"{2:040d}" and body["status"] == "pending"
    assert [(e["reason"], e["level"], e["message"]) for e in body["events"]] == [
        ("planned", "info", "start web (1 replica)"),
        ("failed", "error", "health check timed out"),
    ]


async def test_redeploy_enqueues_production(client: httpx.AsyncClient, queue: FakeQueue) -> None:
    created = await create(client)
    production_id = created["environments"][0]["id"]

    response = await client.post("/api/v1/apps/web/redeploy")

    assert response.status_code == 202
    assert response.json() == {
        "status": "queued",
        "environment_id": production_id,
        "reason": "redeploy",
    }
    assert queue.enqueued[-1] == (production_id, "redeploy")


async def test_without_a_queue_apps_are_created_but_redeploy_is_unavailable(
    settings: Settings, db: Database
) -> None:
    api = create_app(settings, database=db)
    headers = await login(db, settings, "solo")
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers=headers
    ) as client:
        await create(client)
        response = await client.post("/api/v1/apps/web/redeploy")
    assert response.status_code == 503
    assert response.json()["error"] == "temporary_error"


async def test_deliveries_are_listed_newest_first(client: httpx.AsyncClient, db: Database) -> None:
    created = await create(client)
    async with db.session() as session:
        app = await AppRepository(session, None).get_or_raise(created["id"])
        for delivery_id in ("first", "second", "first"):
            await DeliveryRepository(session, None).record(
                app,
                provider="github",
                delivery_id=delivery_id,
                event="push",
                ref="refs/heads/main",
                revision="f" * 40,
                outcome="queued",
            )

    response = await client.get(f"/api/v1/apps/{created['id']}/deliveries")

    assert response.status_code == 200
    assert [d["delivery_id"] for d in response.json()] == ["second", "first"]


# -- validation and errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Web_App", "repo_url": "/srv/web"}, "name"),
        ({"name": "-web", "repo_url": "/srv/web"}, "name"),
        ({"name": "w" * 64, "repo_url": "/srv/web"}, "name"),
        ({"name": "web", "repo_url": "ext::sh -c touch% /tmp/pwned"}, "repo_url"),
        ({"name": "web", "repo_url": "relative/path"}, "repo_url"),
        ({"name": "web", "repo_url": "https://user:hunter2@git.example/x.git"}, "repo_url"),
        ({"name": "web", "repo_url": "/srv/web", "branch": "--upload-pack=evil"}, "branch"),
        ({"name": "web", "repo_url": "/srv/web", "branch": "a..b"}, "branch"),
        (
            {"name": "web", "repo_url": "/srv/web", "manifest_path": "../../etc/passwd"},
            "manifest_path",
        ),
        ({"name": "web", "repo_url": "/srv/web", "manifest_path": "/etc/passwd"}, "manifest_path"),
        ({"name": "web", "repo_url": "/srv/web", "webhook_secret": "mine"}, "webhook_secret"),
        ({"repo_url": "/srv/web"}, "name"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    response = await client.post("/api/v1/apps", json=body)

    assert response.status_code == 422
    error = response.json()
    assert error["error"] == "invalid_request"
    assert field in error["message"]
    assert [issue["field"] for issue in error["details"]["errors"]] == [field]
    assert "hunter2" not in response.text


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/apps", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["details"]["errors"][0] == {
        "field": "body",
        "location": "body",
        "message": "is not valid JSON",
    }


async def test_bad_limit_is_422(client: httpx.AsyncClient) -> None:
    await create(client)
    response = await client.get("/api/v1/apps/web/deployments", params={"limit": 0})
    assert response.status_code == 422
    assert response.json()["details"]["errors"][0]["field"] == "limit"


@pytest.mark.parametrize(
    "url",
    [
        "file:///srv/git/web.git",
        "/srv/git/web.git",
        "git://git.example/web.git",
        "http://git.example/web.git",
        "https://git.example/web.git",
        "https://deploy@git.example/web.git",
        "ssh://git@git.example:2222/web.git",
        "git@github.com:acme/web.git",
    ],
)
def test_accepted_repository_urls(url: str) -> None:
    assert check_repo_url(url) == url


async def test_unknown_routes_answer_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "Not Found"}


async def test_an_unexpected_failure_is_a_bare_500(settings: Settings, db: Database) -> None:
    broken = APIRouter()

    @broken.get("/explode")
    async def explode() -> None:
        raise RuntimeError("password=hunter2 at /srv/secret/path")

    api = create_app(settings, database=db, extra_routers=[broken])
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/explode")

    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "internal server error"}
    assert "hunter2" not in response.text and "Traceback" not in response.text


# -- health ------------------------------------------------------------------------------


async def test_healthz_is_open_and_checks_the_database(api: FastAPI) -> None:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_reports_an_unreachable_database(settings: Settings) -> None:
    unreachable = Database("postgresql+asyncpg://nobody@127.0.0.1:1/railyard")  # refused
    api = create_app(settings, database=unreachable)
    transport = httpx.ASGITransport(app=api)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/healthz")
    finally:
        await unreachable.close()
    assert response.status_code == 503
    assert json.loads(response.text) == {"status": "unavailable", "database": "unreachable"}
