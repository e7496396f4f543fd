"""Adapters between the webhook receiver's port and Railyard's store and queue."""

from __future__ import annotations

import logging

from controller.api.deps import ReconcileQueue
from controller.records import note_pending
from controller.store.crypto import SecretBox
from controller.store.db import Database
from controller.store.deployments import DeliveryRepository
from controller.store.repositories import AppRepository, EnvironmentRepository
from webhook.backend import WebhookApp
from webhook.events import WebhookEvent

log = logging.getLogger(__name__)


class StoreWebhookBackend:
    """``WebhookBackend`` on the database (deliveries) and the reconcile queue."""

    def __init__(self, database: Database, box: SecretBox, queue: ReconcileQueue) -> None:
        self.db = database
        self.box = box
        self.queue = queue

    async def get_app(self, app_id: str) -> WebhookApp | None:
        async with self.db.session() as session:
            app = await AppRepository(session, None).get(app_id)
        if app is None:
            return None
        return WebhookApp(
            id=app.id,
            tenant_id=app.tenant_id,
            repo_url=app.repo_url,
            branch=app.branch,
            secret=self.box.decrypt(app.webhook_secret_encrypted),
        )

    async def record(self, app: WebhookApp, event: WebhookEvent, outcome: str) -> bool:
        async with self.db.session() as session:
            row = await AppRepository(session, app.tenant_id).get_or_raise(app.id)
            return await DeliveryRepository(session, app.tenant_id).record(
                row,
                provider=event.provider,
                delivery_id=event.delivery_id,
                event=event.event_name,
                ref=event.ref or None,
                revision=event.after or None,
                outcome=outcome,
            )

    async def enqueue(self, app: WebhookApp, event: WebhookEvent) -> None:
        if event.kind != "push":
            # Pull-request previews are not built yet: the delivery is recorded, nothing runs.
            log.info(
                "webhook %s: %s event recorded; previews are not implemented", app.id, event.kind
            )
            return
        async with self.db.session() as session:
            environment = await EnvironmentRepository(session, app.tenant_id).get_by_name(
                app.id, "production"
            )
        if environment is not None:
            if event.revision:
                await note_pending(self.db, environment.id, event.revision, "webhook")
            await self.queue.enqueue(environment.id, reason="webhook")
