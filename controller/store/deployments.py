"""Deployments, their events, and webhook deliveries: the record of what happened, and why."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from controller.errors import NotFoundError
from controller.store.base import Repository, ordered_now, status_value
from controller.store.models import (
    App,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    Environment,
    WebhookDelivery,
    new_id,
)
from controller.store.repositories import UNFINISHED

# -- deployments and deliveries ---------------------------------------------------------


class DeploymentRepository(Repository):
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
            status=status_value(status),
            created_at=ordered_now(),
        )
        await self._flush_new(
            [deployment], f"a pending deployment of {revision} is already recorded"
        )
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
            fields["status"] = status_value(fields["status"])
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


class DeliveryRepository(Repository):
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
