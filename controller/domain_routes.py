"""``/api/v1/domains``: the domains a tenant owns, under which its apps may route hosts."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, field_validator

from controller.api.deps import CurrentPrincipalDep, SessionDep
from controller.spec.fields import HOSTNAME
from controller.store.domains import DomainRepository


class DomainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if "." not in value or not re.match(HOSTNAME, value):
            raise ValueError("must be a DNS domain like 'example.com'")
        return value


def make_domain_router() -> APIRouter:
    api = APIRouter(prefix="/api/v1/domains", tags=["domains"])

    @api.get("", summary="Domains this tenant owns")
    async def list_domains(
        session: SessionDep, principal: CurrentPrincipalDep
    ) -> list[dict[str, Any]]:
        rows = await DomainRepository(session, principal.tenant_id).all()
        return [{"name": row.name, "created_at": row.created_at} for row in rows]

    @api.post("", status_code=201, summary="Claim a domain (409 if another tenant has it)")
    async def add_domain(
        body: DomainIn, session: SessionDep, principal: CurrentPrincipalDep
    ) -> dict[str, Any]:
        row = await DomainRepository(session, principal.tenant_id).add(body.name)
        return {"name": row.name, "created_at": row.created_at}

    @api.delete("/{name}", status_code=204, summary="Give a domain up")
    async def remove_domain(
        name: str, session: SessionDep, principal: CurrentPrincipalDep
    ) -> Response:
        await DomainRepository(session, principal.tenant_id).remove(name.lower())
        return Response(status_code=204)

    return api
