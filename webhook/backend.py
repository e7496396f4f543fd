"""The webhook receiver's one port: look up an app, record a delivery, enqueue work.

The router never touches the database or the queue itself. The composition
root adapts ``controller.store`` (``App`` and ``WebhookDelivery`` rows) and
``controller.tasks`` (the reconcile actor) to ``WebhookBackend``; tests use
``InMemoryWebhookBackend``.

Contract for adapters:

* ``record`` is the de-duplication point: it stores the delivery and returns
  False, storing nothing, when ``(app.id, event.delivery_id)`` is already
  recorded. It must be atomic (a unique constraint on those two columns).
  Rejected deliveries are recorded under a fresh ``rejected:<uuid4>`` id so
  a forged request can never claim a real delivery id.
* ``enqueue`` hands the event to the worker and returns at once; it may raise
  ``controller.errors.TemporaryError`` when the queue is unreachable.
* Neither receives a signature, a secret or the raw body: ``WebhookEvent``
  holds none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from webhook.events import WebhookEvent


@dataclass(frozen=True, slots=True)
class WebhookApp:
    id: str
    tenant_id: str
    repo_url: str
    branch: str
    secret: str = field(repr=False)


class WebhookBackend(Protocol):
    async def get_app(self, app_id: str) -> WebhookApp | None: ...

    async def record(self, app: WebhookApp, event: WebhookEvent, outcome: str) -> bool:
        """Store the delivery; False when its delivery id is already recorded for the app."""
        ...

    async def enqueue(self, app: WebhookApp, event: WebhookEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class RecordedDelivery:
    app_id: str
    event: WebhookEvent
    outcome: str


class InMemoryWebhookBackend:
    """The fake: apps in a dict, deliveries and queued events in lists."""

    def __init__(self, apps: list[WebhookApp] | None = None) -> None:
        self.apps: dict[str, WebhookApp] = {app.id: app for app in apps or []}
        self.recorded: list[RecordedDelivery] = []
        self.enqueued: list[tuple[WebhookApp, WebhookEvent]] = []
        self._seen: set[tuple[str, str]] = set()

    def add_app(self, app: WebhookApp) -> None:
        self.apps[app.id] = app

    async def get_app(self, app_id: str) -> WebhookApp | None:
        return self.apps.get(app_id)

    async def record(self, app: WebhookApp, event: WebhookEvent, outcome: str) -> bool:
        # No await between the check and the insert: atomic within the event loop.
        key = (app.id, event.delivery_id)
        if key in self._seen:
            return False
        self._seen.add(key)
        self.recorded.append(RecordedDelivery(app.id, event, outcome))
        return True

    async def enqueue(self, app: WebhookApp, event: WebhookEvent) -> None:
        self.enqueued.append((app, event))

    def outcomes(self) -> list[str]:
        return [delivery.outcome for delivery in self.recorded]
