"""Webhooks through the real store: 100 redeliveries of one push make one deployment."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from controller.store.crypto import SecretBox
from controller.store.db import Database, migrate
from controller.store.deployments import DeliveryRepository, DeploymentRepository
from controller.store.repositories import AppRepository, EnvironmentRepository, TenantRepository
from controller.wiring import StoreWebhookBackend
from webhook.router import make_webhook_router

BOX = SecretBox("webhook-store-test-key-" + "w" * 32)
SECRET = "test-webhook-secret"
SHA = "a" * 40


class RecordingQueue:
    def __init__(self) -> None:
        self.enqueued: list[tuple[str, str]] = []

    async def enqueue(self, environment_id: str, *, reason: str) -> None:
        self.enqueued.append((environment_id, reason))


@pytest.fixture
async def world(
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, Database, str, RecordingQueue]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'railyard.db'}"
    await migrate(url)
    db = Database(url)
    async with db.session() as session:
        tenant = await TenantRepository(session, None).create("acme")
        app = await AppRepository(session, tenant.id).create(
            "shop", "file:///srv/shop.git", webhook_secret_encrypted=BOX.encrypt(SECRET)
        )
    queue = RecordingQueue()
    api = FastAPI()
    api.include_router(make_webhook_router())
    api.state.webhook_backend = StoreWebhookBackend(db, BOX, queue)
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http, db, app.id, queue
    await db.close()


def signed_push(delivery: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"ref": "refs/heads/main", "before": "0" * 40, "after": SHA}).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={digest}",
        "Content-Type": "application/json",
    }


async def test_a_hundred_redeliveries_make_one_deployment(
    world: tuple[httpx.AsyncClient, Database, str, RecordingQueue],
) -> None:
    http, db, app_id, queue = world
    body, headers = signed_push("delivery-1")
    answers = await asyncio.gather(
        *(
            http.post(f"/webhooks/github/{app_id}", content=body, headers=headers)
            for _ in range(100)
        )
    )
    outcomes = sorted(answer.json()["outcome"] for answer in answers)
    assert outcomes.count("queued") == 1 and outcomes.count("duplicate") == 99
    assert len(queue.enqueued) == 1
    async with db.session() as session:
        environment = await EnvironmentRepository(session, None).get_by_name(app_id, "production")
        assert environment is not None
        deployments = await DeploymentRepository(session, None).list_for_environment(environment.id)
        deliveries = await DeliveryRepository(session, None).list_for_app(app_id)
    assert [(d.revision, d.status) for d in deployments] == [(SHA, "pending")]
    assert len(deliveries) == 1


async def test_a_forged_delivery_is_recorded_as_rejected_and_changes_nothing(
    world: tuple[httpx.AsyncClient, Database, str, RecordingQueue],
) -> None:
    http, db, app_id, queue = world
    body, headers = signed_push("delivery-2")
    headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    answer = await http.post(f"/webhooks/github/{app_id}", content=body, headers=headers)
    assert answer.status_code == 401
    assert queue.enqueued == []
    async with db.session() as session:
        [delivery] = await DeliveryRepository(session, None).list_for_app(app_id)
    assert delivery.outcome.startswith("rejected")
    assert SECRET not in repr(delivery)
