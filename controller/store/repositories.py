"""Repositories: every query Railyard runs, scoped to one tenant.

Each repository is built from ``(session, tenant_id)``. With a tenant id, every
read filters by it, so another tenant's id answers ``None`` (``get``) or
``NotFoundError`` (``get_or_raise``), exactly like an id that never existed.
``tenant_id=None`` is system scope, used only by workers and the poller; rows
created there take their tenant from the parent row (app, environment, …).

Repositories flush but never commit: the caller's ``Database.session()`` block
is the unit of work. A ``ConflictError`` raised by a flush leaves the session
needing a rollback, which leaving the block does.

Times are stored as aware UTC. "Newest first" lists order by the timestamp and
then the id; the timestamps of rows that order a history (deployments, events,
deliveries) come from ``ordered_now()``, which never repeats within a process,
so rows created in one burst keep their creation order.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import DateTime, TypeDecorator, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from controller.errors import ConflictError, NotFoundError, ValidationError
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
    new_id,
)

RowT = TypeVar("RowT", bound=SQLModel)

PRODUCTION = "production"
UNFINISHED = (DeploymentStatus.PENDING.value, DeploymentStatus.RUNNING.value)
_IMMUTABLE_FIELDS = frozenset({"id", "tenant_id"})


# -- time -------------------------------------------------------------------------------

_clock_lock = threading.Lock()
_last_stamp = datetime.min.replace(tzinfo=UTC)


def ordered_now() -> datetime:
    """UTC now, strictly after every earlier value this process handed out."""
    global _last_stamp
    with _clock_lock:
        now = datetime.now(UTC)
        if now <= _last_stamp:
            now = _last_stamp + timedelta(microseconds=1)
        _last_stamp = now
        return now


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _column_value(model: type[SQLModel], field: str, value: object) -> object:
    """``value`` as the column stores it: enums by value, datetimes in the column's form."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        column_type = inspect(model).columns[field].type
        impl = column_type.impl if isinstance(column_type, TypeDecorator) else column_type
        utc = as_utc(value)
        return utc if isinstance(impl, DateTime) and impl.timezone else utc.replace(tzinfo=None)
    return value


def _status(value: object) -> str:
    try:
        return DeploymentStatus(str(value)).value
    except ValueError as exc:
        raise ValidationError(f"unknown deployment status {value!r}") from exc


def _assign(row: SQLModel, fields: dict[str, object]) -> None:
    model = type(row)
    for name, value in fields.items():
        if name not in model.model_fields:
            raise ValidationError(f"{model.__name__} has no field {name!r}")
        if name in _IMMUTABLE_FIELDS:
            raise ValidationError(f"{model.__name__}.{name} cannot be changed")
        setattr(row, name, _column_value(model, name, value))


class _Repository:
    def __init__(self, session: AsyncSession, tenant_id: str | None) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _scoped(self, statement: SelectOfScalar[RowT], tenant_column: Any) -> SelectOfScalar[RowT]:
        if self.tenant_id is None:
            return statement
        return statement.where(tenant_column == self.tenant_id)

    def _check_owner(self, row: Any, what: str) -> None:
        """Refuse to act on a row of another tenant, as if it did not exist."""
        if self.tenant_id is not None and row.tenant_id != self.tenant_id:
            raise NotFoundError(f"{what} '{row.id}' not found")

    def _require_tenant(self, what: str) -> str:
        if self.tenant_id is None:
            raise ValidationError(f"{what} needs a tenant scope")
        return self.tenant_id

    async def _first(self, statement: SelectOfScalar[RowT]) -> RowT | None:
        return (await self.session.exec(statement)).first()

    async def _all(self, statement: SelectOfScalar[RowT]) -> list[RowT]:
        return list((await self.session.exec(statement)).all())

    async def _flush_new(self, rows: Sequence[SQLModel], conflict: str) -> None:
        self.session.add_all(rows)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise ConflictError(conflict) from exc

    async def _save(self, row: RowT, fields: dict[str, object]) -> RowT:
        _assign(row, fields)
        self.session.add(row)
        await self.session.flush()
        return row


# -- tenants, users, tokens -------------------------------------------------------------


class TenantRepository(_Repository):
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


class UserRepository(_Repository):
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


class TokenRepository(_Repository):
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


class AppRepository(_Repository):
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


class EnvironmentRepository(_Repository):
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


# -- deployments and deliveries ---------------------------------------------------------


class DeploymentRepository(_Repository):
    async def create(
        self,
        environment: Environment,
        *,
        revision: str | None,
        trigger: str,
        status: DeploymentStatus = DeploymentStatus.PENDING,
    ) -> Deployment:
        self._check_owner(environment, "environment")
        deployment = Deployment(
            tenant_id=environment.tenant_id,
            app_id=environment.app_id,
            environment_id=environment.id,
            revision=revision,
            trigger=trigger,
            status=_status(status),
            created_at=ordered_now(),
        )
        await self._flush_new([deployment], "deployment id clash")
        return deployment

    async def get(self, deployment_id: str) -> Deployment | None:
        statement = select(Deployment).where(Deployment.id == deployment_id)
        return await self._first(self._scoped(statement, Deployment.tenant_id))

    async def get_or_raise(self, deployment_id: str) -> Deployment:
        deployment = await self.get(deployment_id)
        if deployment is None:
            raise NotFoundError(f"deployment '{deployment_id}' not found")
        return deployment

    async def get_by_prefix(self, prefix: str) -> Deployment | None:
        """The one deployment whose id starts with ``prefix`` (as the CLI shows 8 characters);
        None when none or several match."""
        statement = (
            select(Deployment)
            .where(col(Deployment.id).startswith(prefix, autoescape=True))
            .limit(2)
        )
        found = await self._all(self._scoped(statement, Deployment.tenant_id))
        return found[0] if len(found) == 1 else None

    async def list_for_app(self, app_id: str, *, limit: int = 50) -> list[Deployment]:
        """Newest first."""
        statement = self._newest_first(select(Deployment).where(Deployment.app_id == app_id))
        return await self._all(self._scoped(statement.limit(limit), Deployment.tenant_id))

    async def list_for_environment(
        self, environment_id: str, *, limit: int = 50
    ) -> list[Deployment]:
        """Newest first."""
        statement = self._newest_first(
            select(Deployment).where(Deployment.environment_id == environment_id)
        )
        return await self._all(self._scoped(statement.limit(limit), Deployment.tenant_id))

    async def unfinished(self, environment_id: str) -> list[Deployment]:
        """Pending or running deployments of the environment, oldest first."""
        statement = (
            select(Deployment)
            .where(
                Deployment.environment_id == environment_id,
                col(Deployment.status).in_(UNFINISHED),
            )
            .order_by(col(Deployment.created_at), col(Deployment.id))
        )
        return await self._all(self._scoped(statement, Deployment.tenant_id))

    async def update(self, deployment: Deployment, **fields: object) -> Deployment:
        self._check_owner(deployment, "deployment")
        if "status" in fields:
            fields["status"] = _status(fields["status"])
        return await self._save(deployment, fields)

    async def add_event(
        self, deployment: Deployment, reason: str, message: str = "", *, level: str = "info"
    ) -> DeploymentEvent:
        self._check_owner(deployment, "deployment")
        event = DeploymentEvent(
            tenant_id=deployment.tenant_id,
            deployment_id=deployment.id,
            reason=reason,
            message=message,
            level=level,
            created_at=ordered_now(),
        )
        await self._flush_new([event], "event id clash")
        return event

    async def events(self, deployment_id: str) -> list[DeploymentEvent]:
        """Oldest first."""
        statement = (
            select(DeploymentEvent)
            .where(DeploymentEvent.deployment_id == deployment_id)
            .order_by(col(DeploymentEvent.created_at), col(DeploymentEvent.id))
        )
        return await self._all(self._scoped(statement, DeploymentEvent.tenant_id))

    @staticmethod
    def _newest_first(statement: SelectOfScalar[Deployment]) -> SelectOfScalar[Deployment]:
        return statement.order_by(col(Deployment.created_at).desc(), col(Deployment.id).desc())


class DeliveryRepository(_Repository):
    """Webhook deliveries: the record of what each trigger was, and de-duplication."""

    async def record(
        self,
        app: App,
        *,
        provider: str,
        delivery_id: str,
        event: str,
        ref: str | None,
        revision: str | None,
        outcome: str,
    ) -> bool:
        """Record a delivery; False (and nothing written) when it was recorded before.

        ``INSERT … ON CONFLICT DO NOTHING`` on the (app_id, delivery_id) unique
        constraint: two racing deliveries of the same id cannot both be recorded,
        and the loser's transaction stays usable.
        """
        self._check_owner(app, "app")
        values = {
            "id": new_id(),
            "tenant_id": app.tenant_id,
            "app_id": app.id,
            "provider": provider,
            "delivery_id": delivery_id,
            "event": event,
            "ref": ref,
            "revision": revision,
            "outcome": outcome,
            "received_at": ordered_now(),
        }
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(WebhookDelivery)
            .values(values)
            .on_conflict_do_nothing(index_elements=["app_id", "delivery_id"])
            .returning(col(WebhookDelivery.id))
        )
        inserted = (await self.session.exec(statement)).scalar_one_or_none()
        return inserted is not None

    async def list_for_app(self, app_id: str, *, limit: int = 50) -> list[WebhookDelivery]:
        """Newest first."""
        statement = (
            select(WebhookDelivery)
            .where(WebhookDelivery.app_id == app_id)
            .order_by(col(WebhookDelivery.received_at).desc(), col(WebhookDelivery.id).desc())
            .limit(limit)
        )
        return await self._all(self._scoped(statement, WebhookDelivery.tenant_id))
