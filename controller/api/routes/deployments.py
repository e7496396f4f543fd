"""Deployments, redeploys and webhook deliveries: what happened to an app, and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from controller.api.deps import CurrentAppDep, CurrentPrincipalDep, QueueDep, SessionDep
from controller.api.schemas import DeliveryOut, DeploymentDetail, DeploymentOut, ReconcileQueued
from controller.errors import NotFoundError, TemporaryError
from controller.store.deployments import DeliveryRepository, DeploymentRepository
from controller.store.repositories import PRODUCTION, EnvironmentRepository

router = APIRouter(tags=["deployments"])

LimitQuery = Annotated[int, Query(ge=1, le=500, description="how many, newest first")]


@router.get("/apps/{app_id}/deployments", response_model=list[DeploymentOut])
async def list_deployments(
    app: CurrentAppDep, session: SessionDep, principal: CurrentPrincipalDep, limit: LimitQuery = 50
) -> list[DeploymentOut]:
    deployments = await DeploymentRepository(session, principal.tenant_id).list_for_app(
        app.id, limit=limit
    )
    return [DeploymentOut.from_row(deployment) for deployment in deployments]


@router.get("/deployments/{deployment_id}", response_model=DeploymentDetail)
async def get_deployment(
    deployment_id: str, session: SessionDep, principal: CurrentPrincipalDep
) -> DeploymentDetail:
    repo = DeploymentRepository(session, principal.tenant_id)
    deployment = await repo.get(deployment_id)
    if deployment is None and 4 <= len(deployment_id) < 36:
        deployment = await repo.get_by_prefix(deployment_id)
    if deployment is None:
        raise NotFoundError(f"deployment '{deployment_id}' not found (or the prefix is ambiguous)")
    return DeploymentDetail.from_rows(deployment, await repo.events(deployment.id))


@router.post("/apps/{app_id}/redeploy", status_code=202, response_model=ReconcileQueued)
async def redeploy(
    app: CurrentAppDep, session: SessionDep, principal: CurrentPrincipalDep, queue: QueueDep
) -> ReconcileQueued:
    """Reconcile production against the branch head now, even if nothing changed."""
    environment = await EnvironmentRepository(session, principal.tenant_id).get_by_name(
        app.id, PRODUCTION
    )
    if environment is None:
        raise NotFoundError(f"app '{app.name}' has no production environment")
    if queue is None:
        raise TemporaryError("no reconcile queue is configured: cannot deploy from this API")
    await queue.enqueue(environment.id, reason="redeploy")
    return ReconcileQueued(environment_id=environment.id, reason="redeploy")


@router.get("/apps/{app_id}/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    app: CurrentAppDep, session: SessionDep, principal: CurrentPrincipalDep, limit: LimitQuery = 50
) -> list[DeliveryOut]:
    deliveries = await DeliveryRepository(session, principal.tenant_id).list_for_app(
        app.id, limit=limit
    )
    return [DeliveryOut.from_row(delivery) for delivery in deliveries]
