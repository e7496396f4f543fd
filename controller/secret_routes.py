"""``/api/v1/apps/{app}/secrets``: set and remove an app's secrets; list their names only.

Values go in, never out: no endpoint, log or event ever shows one.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from controller.api.deps import (
    CurrentAppDep,
    CurrentPrincipalDep,
    SecretBoxDep,
    SessionDep,
)
from controller.credentials import encode, encode_ssh_key
from controller.errors import ValidationError
from controller.store.repositories import AppRepository
from controller.store.secrets import SecretRepository

SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_SECRET_BYTES = 64 * 1024


class SecretValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(max_length=MAX_SECRET_BYTES)


class SecretName(BaseModel):
    name: str
    updated_at: datetime


def _check_name(name: str) -> str:
    if not SECRET_NAME.match(name):
        raise ValidationError(
            f"secret name {name!r} must be letters, digits and '_' (not starting with a digit)"
        )
    return name


def make_secret_router() -> APIRouter:
    api = APIRouter(prefix="/api/v1/apps/{app_id}/secrets", tags=["secrets"])

    @api.get("", response_model=list[SecretName], summary="Names of the app's secrets")
    async def list_secrets(
        app: CurrentAppDep, session: SessionDep, principal: CurrentPrincipalDep
    ) -> list[dict[str, Any]]:
        rows = await SecretRepository(session, principal.tenant_id).names(app.id)
        return [{"name": row.name, "updated_at": row.updated_at} for row in rows]

    @api.put("/{name}", status_code=204, summary="Set a secret (its value is never shown again)")
    async def set_secret(
        name: str,
        body: SecretValue,
        app: CurrentAppDep,
        session: SessionDep,
        principal: CurrentPrincipalDep,
        box: SecretBoxDep,
    ) -> Response:
        await SecretRepository(session, principal.tenant_id).set(
            app, _check_name(name), body.value, box
        )
        return Response(status_code=204)

    @api.delete("/{name}", status_code=204, summary="Remove a secret")
    async def delete_secret(
        name: str, app: CurrentAppDep, session: SessionDep, principal: CurrentPrincipalDep
    ) -> Response:
        await SecretRepository(session, principal.tenant_id).delete(app, _check_name(name))
        return Response(status_code=204)

    return api


class RepositoryCredentialsIn(BaseModel):
    """Either ``username`` + ``token`` (HTTPS) or ``ssh_private_key`` (a deploy key)."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(default=None, min_length=1, max_length=256)
    token: str | None = Field(default=None, min_length=1, max_length=MAX_SECRET_BYTES)
    ssh_private_key: str | None = Field(default=None, min_length=1, max_length=MAX_SECRET_BYTES)

    def encoded(self) -> str:
        if self.ssh_private_key and not self.token:
            return encode_ssh_key(self.ssh_private_key, self.username or "git")
        if self.token and self.username and not self.ssh_private_key:
            return encode(self.username, self.token)
        raise ValidationError("send either username and token, or ssh_private_key")


def make_credentials_router() -> APIRouter:
    api = APIRouter(prefix="/api/v1/apps/{app_id}/credentials", tags=["secrets"])

    @api.put("", status_code=204, summary="HTTPS token or SSH deploy key of a private repository")
    async def set_credentials(
        body: RepositoryCredentialsIn,
        app: CurrentAppDep,
        session: SessionDep,
        principal: CurrentPrincipalDep,
        box: SecretBoxDep,
    ) -> Response:
        encrypted = box.encrypt(body.encoded())
        await AppRepository(session, principal.tenant_id).update(
            app, credentials_encrypted=encrypted, source_error=None
        )
        return Response(status_code=204)

    @api.delete("", status_code=204, summary="Forget the repository credentials")
    async def delete_credentials(
        app: CurrentAppDep, session: SessionDep, principal: CurrentPrincipalDep
    ) -> Response:
        await AppRepository(session, principal.tenant_id).update(app, credentials_encrypted=None)
        return Response(status_code=204)

    return api
