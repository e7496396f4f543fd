"""``GET /api/v1/apps/{app}/status``: what runs where, observed live from runtime and router.

The database says what was deployed; this endpoint asks Docker and the proxy what
actually runs now, so the answer stays true after a crash or a hand edit.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from controller.api.deps import CurrentAppDep, CurrentPrincipalDep, SessionDep, SettingsDep
from controller.router.base import Router
from controller.runtime.base import Runtime
from controller.state import EnvironmentKey
from controller.store.repositories import (
    DeploymentRepository,
    EnvironmentRepository,
    TenantRepository,
)


def make_status_router(runtime: Runtime, router: Router) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["status"])

    @api.get("/apps/{app_id}/status", summary="What runs for an app, observed live")
    async def app_status(
        app: CurrentAppDep,
        session: SessionDep,
        principal: CurrentPrincipalDep,
        settings: SettingsDep,
    ) -> dict[str, Any]:
        tenant = await TenantRepository(session, None).get(principal.tenant_id)
        tenant_name = tenant.name if tenant else principal.tenant_id
        environments = await EnvironmentRepository(session, principal.tenant_id).list_for_app(
            app.id
        )
        deployments = DeploymentRepository(session, principal.tenant_id)
        body: list[dict[str, Any]] = []
        for environment in environments:
            key = EnvironmentKey(tenant_name, app.name, environment.name)
            containers = await runtime.list_containers(key)
            routes = await router.observe(key)
            latest = await deployments.list_for_environment(environment.id, limit=1)
            services: dict[str, dict[str, Any]] = {}
            for container in containers:
                entry = services.setdefault(
                    container.service,
                    {"name": container.service, "running": 0, "desired": 0, "containers": []},
                )
                entry["desired"] += 1
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
            edge = f"{settings.edge_host}:{settings.edge_port}"
            body.append(
                {
                    "id": environment.id,
                    "name": environment.name,
                    "revision": environment.current_revision,
                    "services": sorted(services.values(), key=lambda s: s["name"]),
                    "routes": [
                        {
                            "host": r.host,
                            "path": r.path,
                            "service": r.service,
                            "upstreams": list(r.upstreams),
                        }
                        for r in routes
                    ],
                    "urls": [f"http://{r.host}:{settings.edge_port}{r.path}" for r in routes],
                    "edge": edge,
                    "latest_deployment": (
                        {
                            "id": latest[0].id,
                            "status": latest[0].status,
                            "revision": latest[0].revision,
                            "error": latest[0].error,
                            "created_at": latest[0].created_at,
                        }
                        if latest
                        else None
                    ),
                }
            )
        return {
            "app": {"id": app.id, "name": app.name, "repo_url": app.repo_url, "branch": app.branch},
            "environments": body,
        }

    return api
