"""Pruning: remove what Railyard owns and nobody wants any more.

Ownership is by label (and installation id), so only our things ever go: the
containers, routes and networks of environments that no longer exist on record
(a deleted app, or a crash halfway through deleting one), and an app's built
images that none of its recent deployments ran.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from sqlmodel.ext.asyncio.session import AsyncSession

from controller.errors import RailyardError, TemporaryError
from controller.locks import Locks
from controller.router.base import Router
from controller.runtime.base import Runtime
from controller.state import EnvironmentKey
from controller.store.db import Database
from controller.store.deployments import DeploymentRepository
from controller.store.models import App, Deployment, DeploymentStatus
from controller.store.repositories import AppRepository, EnvironmentRepository, TenantRepository

log = logging.getLogger(__name__)

KEEP_IMAGES_OF_LAST = 5
"""Images of this many recent successful deployments of an app are kept (fast rollback)."""


async def known_environments(database: Database, instance: str) -> set[EnvironmentKey]:
    async with database.session() as session:
        environments = await EnvironmentRepository(session, None).list_all()
        apps = {app.id: app for app in await AppRepository(session, None).list()}
        tenants = {
            tenant_id: await TenantRepository(session, None).get(tenant_id)
            for tenant_id in {e.tenant_id for e in environments}
        }
    known = set()
    for environment in environments:
        app, tenant = apps.get(environment.app_id), tenants.get(environment.tenant_id)
        if app is not None and tenant is not None:
            known.add(EnvironmentKey(tenant.name, app.name, environment.name, instance))
    return known


async def prune_orphans(
    database: Database, runtime: Runtime, router: Router, locks: Locks, instance: str
) -> list[str]:
    """Remove containers, routes and networks of this installation's vanished environments."""
    known = await known_environments(database, instance)
    removed: list[str] = []

    async def attempt(what: str, action: Awaitable[None]) -> None:
        # One stubborn leftover (still shutting down, say) must not stop the others;
        # the next resync tries it again.
        try:
            await action
        except RailyardError as exc:
            log.warning("could not prune %s yet: %s", what, exc.message)
        else:
            removed.append(what)

    for container in await runtime.list_containers():
        owner = container.environment
        if owner is not None and owner.instance == instance and owner not in known:
            async with locks.hold(f"orphan:{owner.slug}"):
                await attempt(container.name, runtime.remove_container(container.id))
    for key in await router.environments():
        if key.instance == instance and key not in known:
            await attempt(f"routes of {key}", router.remove(key))
    for key in await runtime.list_networks():
        if key.instance == instance and key not in known:
            await attempt(f"network of {key}", runtime.remove_environment_resources(key))
    if removed:
        log.info("pruned orphans: %s", ", ".join(removed))
    return removed


async def prune_images(database: Database, runtime: Runtime, app: App, key: EnvironmentKey) -> None:
    """Remove the app's built images that none of its last deployments ran."""
    prefix = f"{key.tenant}-{key.app}-"
    async with database.session() as session:
        deployments = DeploymentRepository(session, None)
        keep = _recent_images(await deployments.list_for_app(app.id, limit=100))
        # Image names start with "<tenant>-<app>-", so this prefix also covers the images
        # of app "shop-api" when pruning "shop": keep what those apps still want too.
        for other in await _apps_under_prefix(session, prefix, app.id):
            keep |= _recent_images(await deployments.list_for_app(other.id, limit=100))
    try:
        removed = await runtime.prune_images(prefix, keep)
    except TemporaryError as exc:
        log.warning("image pruning of %s skipped: %s", app.name, exc.message)
        return
    if removed:
        log.info("pruned %d old image(s) of %s", len(removed), app.name)


def _recent_images(history: list[Deployment]) -> set[str]:
    """The images the app's last successful deployments ran (``history`` newest first)."""
    recent = [d for d in history if d.status == DeploymentStatus.SUCCEEDED.value]
    return {image for d in recent[:KEEP_IMAGES_OF_LAST] for image in d.images.split()}


async def _apps_under_prefix(session: AsyncSession, prefix: str, app_id: str) -> list[App]:
    """Other apps (of any tenant) whose image names also start with ``prefix``."""
    others = [other for other in await AppRepository(session, None).list() if other.id != app_id]
    tenants = {
        tenant_id: await TenantRepository(session, None).get(tenant_id)
        for tenant_id in {other.tenant_id for other in others}
    }
    return [
        other
        for other in others
        if (tenant := tenants.get(other.tenant_id)) is not None
        and f"{tenant.name}-{other.name}-".startswith(prefix)
    ]
