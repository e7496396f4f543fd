"""``/api/v1/apps``: register, list, show, delete apps and rotate their webhook secret.

Every path that names an app accepts its id or its name; an app of another
tenant answers 404 like one that does not exist.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from controller.api.deps import (
    CurrentAppDep,
    CurrentPrincipalDep,
    QueueDep,
    ReconcileQueue,
    SecretBoxDep,
    SessionDep,
    SettingsDep,
)
from controller.api.schemas import (
    AppCreate,
    AppCreated,
    AppOut,
    AppUpdate,
    EnvironmentOut,
    WebhookSecretRotated,
)
from controller.errors import ForbiddenError, RailyardError
from controller.settings import Settings
from controller.source.routing import is_working_tree
from controller.store.crypto import new_webhook_secret
from controller.store.models import App, Environment
from controller.store.repositories import PRODUCTION, AppRepository, EnvironmentRepository

log = logging.getLogger(__name__)

router = APIRouter(prefix="/apps", tags=["apps"])


def webhook_url(settings: Settings, app: App) -> str:
    return f"{settings.api_url.rstrip('/')}/webhooks/github/{app.id}"


@router.post("", status_code=201, response_model=AppCreated)
async def create_app_route(
    body: AppCreate,
    session: SessionDep,
    principal: CurrentPrincipalDep,
    settings: SettingsDep,
    box: SecretBoxDep,
    queue: QueueDep,
) -> AppCreated:
    """Register an app; the response shows its webhook secret, this once only."""
    if is_working_tree(body.repo_url) and not settings.allow_working_trees:
        raise ForbiddenError(
            "deploying a directory of the server (dir://) is turned off "
            "(RAILYARD_ALLOW_WORKING_TREES=false)"
        )
    secret = new_webhook_secret()
    app = await AppRepository(session, principal.tenant_id).create(
        body.name,
        body.repo_url,
        branch=body.branch,
        manifest_path=body.manifest_path,
        webhook_secret_encrypted=box.encrypt(secret),
    )
    environments = await EnvironmentRepository(session, principal.tenant_id).list_for_app(app.id)
    # Commit before enqueueing: the worker must find the rows the message names.
    await session.commit()
    if queue is not None:
        await _enqueue_first_deploy(queue, environments)
    return AppCreated.from_new_row(
        app,
        webhook_url=webhook_url(settings, app),
        environments=environments,
        webhook_secret=secret,
    )


async def _enqueue_first_deploy(queue: ReconcileQueue, environments: list[Environment]) -> None:
    for environment in environments:
        if environment.name != PRODUCTION:
            continue
        try:
            await queue.enqueue(environment.id, reason="app created")
        except RailyardError as exc:
            # The app exists either way; the periodic resync deploys it later.
            log.warning("could not enqueue the first deploy of %s: %s", environment.id, exc)


@router.get("", response_model=list[AppOut])
async def list_apps(
    session: SessionDep, principal: CurrentPrincipalDep, settings: SettingsDep
) -> list[AppOut]:
    apps = await AppRepository(session, principal.tenant_id).list()
    by_app: dict[str, list[Environment]] = {app.id: [] for app in apps}
    for environment in await EnvironmentRepository(session, principal.tenant_id).list_all():
        by_app.setdefault(environment.app_id, []).append(environment)
    return [
        AppOut.from_row(
            app, webhook_url=webhook_url(settings, app), environments=_ordered(by_app[app.id])
        )
        for app in apps
    ]


@router.get("/{app_id}", response_model=AppOut)
async def get_app(
    app: CurrentAppDep, session: SessionDep, principal: CurrentPrincipalDep, settings: SettingsDep
) -> AppOut:
    return await _app_out(session, principal.tenant_id, app, settings)


@router.patch("/{app_id}", response_model=AppOut)
async def update_app(
    body: AppUpdate,
    app: CurrentAppDep,
    session: SessionDep,
    principal: CurrentPrincipalDep,
    settings: SettingsDep,
) -> AppOut:
    """Change an app's settings: ``self_heal`` (repair drift, or only report it), ``branch``."""
    changes = body.model_dump(exclude_none=True)
    if changes:
        await AppRepository(session, principal.tenant_id).update(app, **changes)
    if "branch" in changes:
        environments = EnvironmentRepository(session, principal.tenant_id)
        production = await environments.get_by_name(app.id, PRODUCTION)
        if production is not None:
            await environments.update(production, ref=changes["branch"])
    return await _app_out(session, principal.tenant_id, app, settings)


@router.delete("/{app_id}", status_code=204)
async def delete_app(
    app: CurrentAppDep, session: SessionDep, principal: CurrentPrincipalDep
) -> Response:
    """Delete the app's records.

    Not yet wired: removing its containers and routes. Until the runtime cleanup
    lands, whatever the app was running keeps running after this call.
    """
    await AppRepository(session, principal.tenant_id).delete(app)
    return Response(status_code=204)


@router.post("/{app_id}/webhook-secret/rotate", response_model=WebhookSecretRotated)
async def rotate_webhook_secret(
    app: CurrentAppDep,
    session: SessionDep,
    principal: CurrentPrincipalDep,
    settings: SettingsDep,
    box: SecretBoxDep,
) -> WebhookSecretRotated:
    """Replace the webhook secret; the response shows the new one, this once only."""
    secret = new_webhook_secret()
    await AppRepository(session, principal.tenant_id).update(
        app, webhook_secret_encrypted=box.encrypt(secret)
    )
    return WebhookSecretRotated(
        app_id=app.id, webhook_url=webhook_url(settings, app), webhook_secret=secret
    )


@router.get("/{app_id}/environments", response_model=list[EnvironmentOut])
async def list_environments(
    app: CurrentAppDep, session: SessionDep, principal: CurrentPrincipalDep
) -> list[EnvironmentOut]:
    environments = await EnvironmentRepository(session, principal.tenant_id).list_for_app(app.id)
    return [EnvironmentOut.from_row(environment) for environment in environments]


async def _app_out(session: AsyncSession, tenant_id: str, app: App, settings: Settings) -> AppOut:
    environments = await EnvironmentRepository(session, tenant_id).list_for_app(app.id)
    return AppOut.from_row(app, webhook_url=webhook_url(settings, app), environments=environments)


def _ordered(environments: list[Environment]) -> list[Environment]:
    """Production first, then previews by PR number (as ``list_for_app`` orders them)."""
    return sorted(
        environments,
        key=lambda env: (env.kind != PRODUCTION, env.pr_number or 0, env.name),
    )
