"""FastAPI dependencies, as ``Annotated`` aliases that tests override.

``create_app`` puts the settings, database, secret box, signing key and queue on
``app.state``; the functions here hand them to routes. Overriding one of the
functions (``app.dependency_overrides[get_queue] = …``) swaps it for a fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from controller.api.auth import Principal, authenticate
from controller.errors import AuthError, NotFoundError
from controller.settings import Settings
from controller.store.crypto import SecretBox
from controller.store.db import Database
from controller.store.models import App
from controller.store.repositories import AppRepository


class ReconcileQueue(Protocol):
    """Where the API (and the triggers) ask for an environment to be reconciled."""

    async def enqueue(self, environment_id: str, *, reason: str) -> None: ...


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_secret_box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


def get_signing_key(request: Request) -> str:
    key: str = request.app.state.signing_key
    return key


def get_queue(request: Request) -> ReconcileQueue | None:
    queue: ReconcileQueue | None = request.app.state.queue
    return queue


def get_now() -> datetime:
    return datetime.now(UTC)


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SecretBoxDep = Annotated[SecretBox, Depends(get_secret_box)]
SigningKeyDep = Annotated[str, Depends(get_signing_key)]
QueueDep = Annotated[ReconcileQueue | None, Depends(get_queue)]
NowDep = Annotated[datetime, Depends(get_now)]


async def get_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """One unit of work per request, committed before the response is sent."""
    async with database.session() as session:
        yield session


# scope="function": the commit happens before the response leaves, so a client that
# got 201 can read what it created, and a failed commit is reported, not swallowed.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")


async def get_principal(
    session: SessionDep,
    key: SigningKeyDep,
    now: NowDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise AuthError("missing bearer token (send 'Authorization: Bearer <token>')")
    return await authenticate(session, credentials.credentials, key, now)


CurrentPrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_current_app(app_id: str, session: SessionDep, principal: CurrentPrincipalDep) -> App:
    """The app named in the path, by id or by name, within the caller's tenant."""
    apps = AppRepository(session, principal.tenant_id)
    app = await apps.get(app_id) or await apps.get_by_name(app_id)
    if app is None:
        raise NotFoundError(f"app '{app_id}' not found")
    return app


CurrentAppDep = Annotated[App, Depends(get_current_app)]
