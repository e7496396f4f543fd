"""``create_app(settings)``: the status API's composition root.

Builds nothing at import time. The caller runs ``migrate()`` (and
``bootstrap()``) first; ``create_app`` only wires settings, database, secret box
and queue into a FastAPI app. A database passed in stays the caller's to close;
one built here is closed when the app shuts down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from controller.api.deps import ReconcileQueue
from controller.api.errors import install_error_handlers
from controller.api.routes import apps, auth, deployments, health
from controller.settings import Settings
from controller.store.crypto import SecretBox
from controller.store.db import Database

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    queue: ReconcileQueue | None = None,
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    owned = database is None
    db = database if database is not None else Database(settings.resolved_database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                await db.close()

    app = FastAPI(
        title="Railyard",
        summary="Status API of a self-hosted GitOps deployment controller",
        version="0.1.0",
        lifespan=lifespan,
    )
    key = settings.signing_key()
    app.state.settings = settings
    app.state.database = db
    app.state.signing_key = key
    app.state.secret_box = SecretBox(key)
    app.state.queue = queue

    install_error_handlers(app)
    app.include_router(health.router)
    api = APIRouter(prefix=API_PREFIX)
    for router in (auth.router, apps.router, deployments.router):
        api.include_router(router)
    app.include_router(api)
    for router in extra_routers:
        app.include_router(router)
    return app
