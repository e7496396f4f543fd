"""Live endpoints: what runs now (status), what a reconcile would do now (plan), and logs.

The database says what was deployed; these ask Docker, the proxy and Git, so the
answers stay true after a crash or a hand edit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from controller.api.deps import (
    CurrentAppDep,
    CurrentPrincipalDep,
    QueueDep,
    SessionDep,
    SettingsDep,
)
from controller.errors import ConflictError, NotFoundError, TemporaryError, ValidationError
from controller.reconciler import Preview
from controller.router.base import Router
from controller.runtime.base import Runtime
from controller.settings import Settings
from controller.source.routing import is_working_tree
from controller.state import EnvironmentKey, ObservedContainer, RouteTarget
from controller.store.deployments import DeploymentRepository
from controller.store.models import App, Deployment, DeploymentStatus, Environment
from controller.store.repositories import EnvironmentRepository, TenantRepository

PreviewPlan = Callable[[str], Awaitable[Preview]]
EnvQuery = Annotated[str, Query(description="environment name: production or pr-N")]


def _services(containers: list[ObservedContainer]) -> list[dict[str, Any]]:
    services: dict[str, dict[str, Any]] = {}
    for container in containers:
        entry = services.setdefault(
            container.service,
            {"name": container.service, "running": 0, "containers": []},
        )
        entry["running"] += int(container.running)
        entry["containers"].append(
            {
                "name": container.name,
                "state": container.state,
                "address": container.address,
                "revision": container.revision,
                "spec_hash": container.spec_hash,
            }
        )
    return sorted(services.values(), key=lambda s: s["name"])


def _deployment(row: Deployment | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": row.id,
        "status": row.status,
        "revision": row.revision,
        "error": row.error,
        "created_at": row.created_at,
    }


def _environment(
    environment: Environment,
    containers: list[ObservedContainer],
    routes: list[RouteTarget],
    latest: Deployment | None,
    settings: Settings,
) -> dict[str, Any]:
    return {
        "id": environment.id,
        "name": environment.name,
        "revision": environment.current_revision,
        "pinned_revision": environment.pinned_revision,
        "services": _services(containers),
        "routes": [
            {"host": r.host, "path": r.path, "service": r.service, "upstreams": list(r.upstreams)}
            for r in routes
        ],
        "urls": [f"http://{r.host}:{settings.edge_port}{r.path}" for r in routes],
        "latest_deployment": _deployment(latest),
    }


async def follow_lines(
    runtime: Runtime, containers: list[ObservedContainer], tail: int
) -> AsyncIterator[str]:
    """Every container's new log lines as they come, prefixed service/replica, merged."""
    lines: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1000)

    async def follow(container: ObservedContainer) -> None:
        prefix = f"{container.service}/{container.replica}"
        try:
            async with aclosing(runtime.follow_logs(container.id, tail=tail)) as stream:
                async for line in stream:
                    await lines.put(f"{prefix} | {line}\n")
        except NotFoundError:
            return
        finally:
            await lines.put(None)

    followers = [asyncio.create_task(follow(c)) for c in containers]
    remaining = len(followers)
    try:
        while remaining:
            line = await lines.get()
            if line is None:
                remaining -= 1
                continue
            yield line
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)


def make_status_router(
    runtime: Runtime, router: Router, preview: PreviewPlan, *, instance: str = ""
) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["live"])

    async def key_for(
        session: AsyncSession, tenant_id: str, app: App, environment: Environment
    ) -> EnvironmentKey:
        tenant = await TenantRepository(session, None).get(tenant_id)
        tenant_name = tenant.name if tenant else tenant_id
        return EnvironmentKey(tenant_name, app.name, environment.name, instance)

    async def environment_named(
        session: AsyncSession, tenant_id: str, app: App, name: str
    ) -> Environment:
        environment = await EnvironmentRepository(session, tenant_id).get_by_name(app.id, name)
        if environment is None:
            raise NotFoundError(f"app '{app.name}' has no environment '{name}'")
        return environment

    @api.get("/apps/{app_id}/status", summary="What runs for an app, observed live")
    async def app_status(
        app: CurrentAppDep,
        session: SessionDep,
        principal: CurrentPrincipalDep,
        settings: SettingsDep,
    ) -> dict[str, Any]:
        environments = await EnvironmentRepository(session, principal.tenant_id).list_for_app(
            app.id
        )
        deployments = DeploymentRepository(session, principal.tenant_id)
        body = []
        for environment in environments:
            key = await key_for(session, principal.tenant_id, app, environment)
            latest = await deployments.list_for_environment(environment.id, limit=1)
            body.append(
                _environment(
                    environment,
                    await runtime.list_containers(key),
                    await router.observe(key),
                    latest[0] if latest else None,
                    settings,
                )
            )
        return {
            "app": {"id": app.id, "name": app.name, "repo_url": app.repo_url, "branch": app.branch},
            "environments": body,
        }

    @api.get("/environments/{environment_id}/plan", summary="What a reconcile would do now")
    async def environment_plan(
        environment_id: str, session: SessionDep, principal: CurrentPrincipalDep
    ) -> dict[str, Any]:
        environment = await EnvironmentRepository(session, principal.tenant_id).get_or_raise(
            environment_id
        )
        result = await preview(environment.id)
        return {
            "environment_id": environment.id,
            "environment": environment.name,
            "revision": result.revision,
            "summary": result.plan.summary(),
            "steps": [str(step) for step in result.plan.steps],
        }

    @api.get("/apps/{app_id}/plan", summary="What a reconcile of one environment would do now")
    async def app_plan(
        app: CurrentAppDep,
        session: SessionDep,
        principal: CurrentPrincipalDep,
        env: EnvQuery = "production",
    ) -> dict[str, Any]:
        environment = await environment_named(session, principal.tenant_id, app, env)
        return await environment_plan(environment.id, session, principal)

    @api.get(
        "/apps/{app_id}/logs",
        summary="The last lines of each container's log; with follow=true, a live stream",
        response_class=PlainTextResponse,
    )
    async def app_logs(
        app: CurrentAppDep,
        session: SessionDep,
        principal: CurrentPrincipalDep,
        env: EnvQuery = "production",
        service: Annotated[str | None, Query(description="only this service")] = None,
        tail: Annotated[int, Query(ge=1, le=10_000)] = 100,
        follow: Annotated[bool, Query(description="keep streaming new lines")] = False,
    ) -> Response:
        environment = await environment_named(session, principal.tenant_id, app, env)
        key = await key_for(session, principal.tenant_id, app, environment)
        containers = [
            c for c in await runtime.list_containers(key) if service is None or c.service == service
        ]
        if service is not None and not containers:
            raise NotFoundError(f"no containers of service '{service}' in {env}")
        if follow:
            running = [c for c in containers if c.running]
            return StreamingResponse(
                follow_lines(runtime, running, tail), media_type="text/plain; charset=utf-8"
            )
        chunks: list[str] = []
        for container in containers:
            try:
                text = await runtime.container_logs(container.id, tail=tail)
            except NotFoundError:
                continue
            prefix = f"{container.service}/{container.replica}"
            chunks.extend(f"{prefix} | {line}" for line in text.splitlines())
        return PlainTextResponse("\n".join(chunks) + ("\n" if chunks else ""))

    @api.post("/apps/{app_id}/rollback", status_code=202, summary="Return to an earlier deployment")
    async def rollback(
        app: CurrentAppDep,
        session: SessionDep,
        principal: CurrentPrincipalDep,
        queue: QueueDep,
        body: RollbackRequest | None = None,
    ) -> dict[str, Any]:
        """Reconcile the environment to an earlier deployment's revision (same image and
        configuration, same zero-downtime path); it stays there until the next push or redeploy."""
        request = body or RollbackRequest()
        if is_working_tree(app.repo_url):
            raise ConflictError(
                f"{app.name} deploys a working tree, which has no history to roll back to"
            )
        environment = await environment_named(session, principal.tenant_id, app, request.env)
        deployments = DeploymentRepository(session, principal.tenant_id)
        chosen: Deployment | None
        if request.to:
            chosen = await deployments.get_or_raise(request.to)
            if chosen.environment_id != environment.id or not chosen.revision:
                raise ValidationError(
                    f"deployment {request.to} is not a deployment of {app.name}/{request.env}"
                )
        else:
            chosen = next(
                (
                    row
                    for row in await deployments.list_for_environment(environment.id, limit=200)
                    if row.status == DeploymentStatus.SUCCEEDED.value
                    and row.revision
                    and row.revision != environment.current_revision
                ),
                None,
            )
            if chosen is None:
                raise ConflictError(
                    f"{app.name}/{request.env} has no earlier successful deployment"
                )
        if queue is None:
            raise TemporaryError("no reconcile queue is configured: cannot deploy from this API")
        await EnvironmentRepository(session, principal.tenant_id).update(
            environment, pinned_revision=chosen.revision
        )
        await session.commit()
        await queue.enqueue(environment.id, reason="rollback")
        return {
            "environment_id": environment.id,
            "revision": chosen.revision,
            "from_deployment": chosen.id,
        }

    return api


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str | None = None
    """The deployment to return to; default: the last successful one of another revision."""
    env: str = "production"
