"""Domains a tenant owns: its apps may route hosts under them (and under the shared base domain)."""

from __future__ import annotations

from sqlmodel import col, select

from controller.errors import NotFoundError
from controller.store.base import Repository
from controller.store.models import Domain


class DomainRepository(Repository):
    async def all(self) -> list[Domain]:
        statement = select(Domain).order_by(col(Domain.name))
        return await self._all(self._scoped(statement, Domain.tenant_id))

    async def names(self) -> list[str]:
        return [domain.name for domain in await self.all()]

    async def add(self, name: str) -> Domain:
        domain = Domain(tenant_id=self._require_tenant("adding a domain"), name=name)
        await self._flush_new([domain], f"domain {name} is already claimed")
        return domain

    async def remove(self, name: str) -> None:
        statement = select(Domain).where(Domain.name == name)
        domain = await self._first(self._scoped(statement, Domain.tenant_id))
        if domain is None:
            raise NotFoundError(f"domain '{name}' not found")
        await self.session.delete(domain)
        await self.session.flush()
