"""Per-app secrets: stored encrypted, listed by name only, decrypted only to render."""

from __future__ import annotations

from sqlmodel import col, delete, select

from controller.errors import NotFoundError
from controller.store.base import Repository
from controller.store.crypto import SecretBox
from controller.store.models import App, Secret, utcnow


class SecretRepository(Repository):
    async def names(self, app_id: str) -> list[Secret]:
        statement = select(Secret).where(Secret.app_id == app_id).order_by(col(Secret.name))
        return await self._all(self._scoped(statement, Secret.tenant_id))

    async def set(self, app: App, name: str, value: str, box: SecretBox) -> Secret:
        self._check_owner(app, "app")
        statement = select(Secret).where(Secret.app_id == app.id, Secret.name == name)
        existing = await self._first(self._scoped(statement, Secret.tenant_id))
        if existing is not None:
            return await self._save(
                existing, {"value_encrypted": box.encrypt(value), "updated_at": utcnow()}
            )
        secret = Secret(
            tenant_id=app.tenant_id,
            app_id=app.id,
            name=name,
            value_encrypted=box.encrypt(value),
        )
        await self._flush_new([secret], f"secret {name} already exists")
        return secret

    async def delete(self, app: App, name: str) -> None:
        self._check_owner(app, "app")
        result = await self.session.exec(
            delete(Secret).where(col(Secret.app_id) == app.id, col(Secret.name) == name)
        )
        if not result.rowcount:
            raise NotFoundError(f"app '{app.name}' has no secret '{name}'")

    async def values(self, app_id: str, box: SecretBox) -> dict[str, str]:
        """Decrypted values, for rendering a manifest only: never log or return them."""
        return {
            secret.name: box.decrypt(secret.value_encrypted) for secret in await self.names(app_id)
        }
