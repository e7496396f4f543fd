"""``POST /webhooks/{provider}/{app_id}``: verify, normalise, record, enqueue, answer.

The handler answers in milliseconds and never clones or deploys; the worker
does that from the queue. Steps, in an order chosen so that nothing is parsed
or stored before it is known to be small enough and authentic:

1. unknown provider                                   -> 404
2. body over ``max_body_bytes`` (Content-Length, then
   counted while streaming; never read whole first)   -> 413
3. unknown app                                        -> 404
4. signature missing or wrong (recorded)              -> 401
5. body not JSON / not the announced event (recorded) -> 400
6. normalise, ``decide`` (see ``webhook.decide``), ``record`` (de-duplicates):
   queued -> 202 and enqueued; ignored -> 200; duplicate -> 200, not enqueued.

Every answer is ``{"outcome": ..., "delivery_id": ...}``, so the forge's
delivery log shows the same reason Railyard recorded.

Wiring: the backend comes from the ``BackendDep`` dependency, which reads
``app.state.webhook_backend``. The composition root sets that attribute (e.g.
in its lifespan, once the database and broker exist); tests may do the same
or override ``get_webhook_backend`` in ``app.dependency_overrides``::

    app.include_router(make_webhook_router())
    app.state.webhook_backend = StoreWebhookBackend(...)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from controller.errors import TemporaryError
from webhook.backend import WebhookApp, WebhookBackend
from webhook.decide import DUPLICATE, decide
from webhook.errors import MalformedPayload, SignatureRejected
from webhook.events import PROVIDERS, Delivery, Provider, parse_provider
from webhook.headers import delivery_id, event_name, lower_keys
from webhook.normalise import normalise
from webhook.verify import verify_signature

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class WebhookAnswer(BaseModel):
    outcome: str
    delivery_id: str | None


class BodyTooLarge(Exception):
    """The request body passed the size cap (internal to this module)."""


def get_webhook_backend(request: Request) -> WebhookBackend:
    backend = getattr(request.app.state, "webhook_backend", None)
    if backend is None:
        raise RuntimeError(
            "no webhook backend: set app.state.webhook_backend in the composition root"
        )
    return cast(WebhookBackend, backend)


BackendDep = Annotated[WebhookBackend, Depends(get_webhook_backend)]


def make_webhook_router(
    *, prefix: str = "/webhooks", max_body_bytes: int = MAX_BODY_BYTES
) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["webhooks"])

    @router.post(
        "/{provider}/{app_id}",
        summary=f"Receive a webhook from one of: {', '.join(PROVIDERS)}",
        status_code=202,
        response_model=WebhookAnswer,
        responses={
            200: {"model": WebhookAnswer, "description": "ignored or duplicate"},
            400: {"model": WebhookAnswer, "description": "malformed body"},
            401: {"model": WebhookAnswer, "description": "missing or bad signature"},
            404: {"model": WebhookAnswer, "description": "unknown provider or app"},
            413: {"model": WebhookAnswer, "description": "body over the size cap"},
            503: {"model": WebhookAnswer, "description": "queue unavailable; resync catches up"},
        },
    )
    async def receive_webhook(
        provider: str, app_id: str, request: Request, backend: BackendDep
    ) -> JSONResponse:
        known = parse_provider(provider)
        if known is None:
            return answer(404, "rejected: unknown provider", None)
        headers = lower_keys(request.headers)
        try:
            body = await read_capped_body(request, headers, max_body_bytes)
        except BodyTooLarge:
            return answer(413, "rejected: body too large", None)
        except MalformedPayload as exc:
            return answer(400, f"rejected: {exc.reason}", None)
        claimed_id = delivery_id(known, headers, body)
        app = await backend.get_app(app_id)
        if app is None:
            return answer(404, "rejected: unknown app", claimed_id)
        try:
            verify_signature(known, app.secret, body, headers)
            event = normalise(known, headers, body, tracked_branch=app.branch)
        except SignatureRejected as exc:
            return await reject(backend, app, known, headers, claimed_id, 401, exc.reason)
        except MalformedPayload as exc:
            return await reject(backend, app, known, headers, claimed_id, 400, exc.reason)

        decision = decide(app, event)
        if not await backend.record(app, event, decision.outcome):
            return answer(200, DUPLICATE, event.delivery_id)
        if decision.enqueue:
            try:
                await backend.enqueue(app, event)
            except TemporaryError:
                logger.warning("webhook %s for app %s: queue unavailable", claimed_id, app.id)
                return answer(503, "failed: queue unavailable", event.delivery_id)
        logger.info(
            "webhook %s %s for app %s: %s", known, event.event_name, app.id, decision.outcome
        )
        return answer(decision.status_code, decision.outcome, event.delivery_id)

    return router


async def read_capped_body(request: Request, headers: Mapping[str, str], limit: int) -> bytes:
    """The body, or ``BodyTooLarge`` as soon as more than ``limit`` bytes are declared or seen."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise MalformedPayload("bad Content-Length")
        if int(declared) > limit:
            raise BodyTooLarge
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge
    except ClientDisconnect as exc:
        raise MalformedPayload("client disconnected") from exc
    return bytes(body)


async def reject(
    backend: WebhookBackend,
    app: WebhookApp,
    provider: Provider,
    headers: Mapping[str, str],
    claimed_id: str,
    status_code: int,
    reason: str,
) -> JSONResponse:
    """Record a turned-away delivery under a fresh id, so it never claims a real one."""
    outcome = f"rejected: {reason}"
    delivery = Delivery(provider, f"rejected:{uuid.uuid4()}", event_name(provider, headers))
    await backend.record(app, delivery.other(), outcome)
    logger.warning("webhook %s for app %s: %s", claimed_id, app.id, outcome)
    return answer(status_code, outcome, claimed_id)


def answer(status_code: int, outcome: str, delivery: str | None) -> JSONResponse:
    return JSONResponse({"outcome": outcome, "delivery_id": delivery}, status_code=status_code)
