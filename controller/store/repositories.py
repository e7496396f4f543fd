"""Repositories: every query Railyard runs, scoped to one tenant.

Each repository is built from ``(session, tenant_id)``. With a tenant id, every
read filters by it, so another tenant's id answers ``None`` (``get``) or
``NotFoundError`` (``get_or_raise``), exactly like an id that never existed.
``tenant_id=None`` is system scope, used only by workers and the poller; rows
created there take their tenant from the parent row (app, environment, …).

Repositories flush but never commit: the caller's ``Database.session()`` block
is the unit of work. A ``ConflictError`` raised by a flush leaves the session
needing a rollback, which leaving the block does.

Tenants, users, tokens, apps and environments live here; deployments, their events and
webhook deliveries in ``deployments.py``; what they share in ``base.py``.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, delete, select

from controller.errors import ConflictError, NotFoundError
from controller.store.base import Repository, as_utc, ordered_now
from controller.store.models import (
    ApiToken,
    App,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    Environment,
    Secret,
    Tenant,
    User,
    WebhookDelivery,
)

PRODUCTION = "production"
UNFINISHED = (DeploymentStatus.PENDING.value, DeploymentStatus.RUNNING.value)


# -- tenants, users, tokens -------------------------------------------------------------


class TenantRepository(Repository):
    """Tenants themselves: the scope argument is ignored."""

    async def get(self, tenant_id: str) -> Tenant | None:
        return await self._first(select(Tenant).where(Tenant.id == tenant_id))

    async def get_by_name(self, name: str) -> Tenant | None:
        return await self._first(select(Tenant).where(Tenant.name == name))

    async def create(self, name: str) -> Tenant:
        if await self.get_by_name(name) is not None:
            raise ConflictError(f"tenant '{name}' already exists")
        tenant = Tenant(name=name, created_at=ordered_now())
        await self._flush_new([tenant], f"tenant '{name}' already exists")
        return tenant


class UserRepository(Repository):
    async def get(self, user_id: str) -> User | None:
        return await self._first(
            self._scoped(select(User).where(User.id == user_id), User.tenant_id)
        )

    async def get_by_email(self, email: str) -> User | None:
        statement = select(User).where(User.email == email)
        return await self._first(self._scoped(statement, User.tenant_id))

    async def create(self, email: str, role: str = "owner") -> User:
        tenant_id = self._require_tenant("creating a user")
        if await UserRepository(self.session, None).get_by_email(email) is not None:
            raise ConflictError(f"user '{email}' already exists")
        user = User(tenant_id=tenant_id, email=email, role=role, created_at=ordered_now())
        await self._flush_new([user], f"user '{email}' already exists")
        return user


class TokenRepository(Repository):
    """Issued API tokens (JWT ``jti``): looked up on every request, revocable."""

    async def create(self, user_id: str, expires_at: datetime, name: str = "default") -> ApiToken:
        user = await UserRepository(self.session, self.tenant_id).get(user_id)
        if user is None:
            raise NotFoundError(f"user '{user_id}' not found")
        token = ApiToken(
            tenant_id=user.tenant_id,
            user_id=user.id,
            name=name,
            created_at=ordered_now(),
            expires_at=as_utc(expires_at),
        )
        await self._flush_new([token], "token id clash")
        return token

    async def get(self, token_id: str) -> ApiToken | None:
        statement = select(ApiToken).where(ApiToken.id == token_id)
        return await self._first(self._scoped(statement, ApiToken.tenant_id))

    async def revoke(self, token_id: str, now: datetime) -> None:
        """Revoke a token; revoking it again keeps the first revocation time."""
        token = await self.get(token_id)
        if token is None:
            raise NotFoundError(f"token '{token_id}' not found")
        if token.revoked_at is None:
            await self._save(token, {"revoked_at": now})


# -- apps and environments --------------------------------------------------------------


class AppRepository(Repository):
    async def list(self) -> list[App]:
        statement = select(App).order_by(col(App.name), col(App.id))
        return await self._all(self._scoped(statement, App.tenant_id))

    async def get(self, app_id: str) -> App | None:
        return await self._first(self._scoped(select(App).where(App.id == app_id), App.tenant_id))

    async def get_or_raise(self, app_id: str) -> App:
        app = await self.get(app_id)
        if app is None:
            raise NotFoundError(f"app '{app_id}' not found")
        return app

    async def get_by_name(self, name: str) -> App | None:
        """Names are unique per tenant only, so this needs a tenant scope."""
        tenant_id = self._require_tenant("looking an app up by name")
        statement = select(App).where(App.tenant_id == tenant_id, App.name == name)
        return await self._first(statement)

    async def get_by_name_or_raise(self, name: str) -> App:
        app = await self.get_by_name(name)
        if app is None:
            raise NotFoundError(f"app '{name}' not found")
        return app

    async def create(
        self,
        name: str,
        repo_url: str,
        *,
        branch: str = "main",
        manifest_path: str = "paas.yaml",
        webhook_secret_encrypted: str,
    ) -> App:
        """Create the app and its production environment (tracking ``branch``) together."""
        tenant_id = self._require_tenant("creating an app")
        if await self.get_by_name(name) is not None:
            raise ConflictError(f"app '{name}' already exists")
        now = ordered_now()
        app = App(
            tenant_id=tenant_id,
            name=name,
            repo_url=repo_url,
            branch=branch,
            manifest_path=manifest_path,
            webhook_secret_encrypted=webhook_secret_encrypted,
            created_at=now,
        )
        production = Environment(
            tenant_id=tenant_id,
            app_id=app.id,
            name=PRODUCTION,
            kind=PRODUCTION,
            ref=branch,
            created_at=now,
            updated_at=now,
        )
        await self._flush_new([app, production], f"app '{name}' already exists")
        return app

    async def update(self, app: App, **fields: object) -> App:
        self._check_owner(app, "app")
        return await self._save(app, fields)

    async def delete(self, app: App) -> None:
        """Delete the app and every row under it (environments, deployments, deliveries)."""
        self._check_owner(app, "app")
        deployments = select(Deployment.id).where(Deployment.app_id == app.id)
        await self.session.exec(
            delete(DeploymentEvent).where(col(DeploymentEvent.deployment_id).in_(deployments))
        )
        await self.session.exec(delete(Deployment).where(col(Deployment.app_id) == app.id))
        await self.session.exec(
            delete(WebhookDelivery).where(col(WebhookDelivery.app_id) == app.id)
        )
        await self.session.exec(delete(Environment).where(col(Environment.app_id) == app.id))
        await self.session.exec(delete(Secret).where(col(Secret.app_id) == app.id))
        await self.session.delete(app)
        await self.session.flush()


class EnvironmentRepository(Repository):
    async def get(self, environment_id: str) -> Environment | None:
        statement = select(Environment).where(Environment.id == environment_id)
        return await self._first(self._scoped(statement, Environment.tenant_id))

    async def get_or_raise(self, environment_id: str) -> Environment:
        environment = await self.get(environment_id)
        if environment is None:
            raise NotFoundError(f"environment '{environment_id}' not found")
        return environment

    async def list_for_app(self, app_id: str) -> list[Environment]:
        """Production first, then previews by PR number."""
        statement = (
            select(Environment)
            .where(Environment.app_id == app_id)
            .order_by(
                col(Environment.kind) != PRODUCTION,
                col(Environment.pr_number),
                col(Environment.name),
            )
        )
        return await self._all(self._scoped(statement, Environment.tenant_id))

    async def list_all(self) -> list[Environment]:
        statement = select(Environment).order_by(col(Environment.created_at), col(Environment.id))
        return await self._all(self._scoped(statement, Environment.tenant_id))

    async def get_by_name(self, app_id: str, name: str) -> Environment | None:
        statement = select(Environment).where(
            Environment.app_id == app_id, Environment.name == name
        )
        return await self._first(self._scoped(statement, Environment.tenant_id))

    async def create(
        self, app: App, name: str, *, kind: str, ref: str, pr_number: int | None = None
    ) -> Environment:
        self._check_owner(app, "app")
        if await self.get_by_name(app.id, name) is not None:
            raise ConflictError(f"environment '{name}' of app '{app.name}' already exists")
        now = ordered_now()
        environment = Environment(
            tenant_id=app.tenant_id,
            app_id=app.id,
            name=name,
            kind=kind,
            ref=ref,
            pr_number=pr_number,
            created_at=now,
            updated_at=now,
        )
        await self._flush_new(
            [environment], f"environment '{name}' of app '{app.name}' already exists"
        )
        return environment

    async def update(self, environment: Environment, **fields: object) -> Environment:
        self._check_owner(environment, "environment")
        fields.setdefault("updated_at", ordered_now())
        return await self._save(environment, fields)

    async def delete(self, environment: Environment) -> None:
        """Delete the environment with its deployment history."""
        self._check_owner(environment, "environment")
        deployments = select(Deployment.id).where(Deployment.environment_id == environment.id)
        await self.session.exec(
            delete(DeploymentEvent).where(col(DeploymentEvent.deployment_id).in_(deployments))
        )
        await self.session.exec(
            delete(Deployment).where(col(Deployment.environment_id) == environment.id)
        )
        await self.session.delete(environment)
        await self.session.flush()
