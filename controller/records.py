"""Deployment records that triggers write before the worker runs.

A push noticed by a webhook or the poller is recorded at once as a *pending*
deployment of its revision, so `railyard deployments` shows it queued. The
reconcile that follows takes the pending record of the revision it deploys and
marks the others *superseded*: the last commit wins.
"""

from __future__ import annotations

from controller.store.db import Database
from controller.store.models import DeploymentStatus
from controller.store.repositories import DeploymentRepository, EnvironmentRepository


async def note_pending(
    database: Database, environment_id: str, revision: str, trigger: str
) -> None:
    """Record ``revision`` as pending for the environment, once (a redelivery adds nothing)."""
    async with database.session() as session:
        environment = await EnvironmentRepository(session, None).get(environment_id)
        if environment is None or environment.current_revision == revision:
            return
        deployments = DeploymentRepository(session, None)
        for existing in await deployments.unfinished(environment_id):
            if existing.revision == revision:
                return
        await deployments.create(
            environment, revision=revision, trigger=trigger, status=DeploymentStatus.PENDING
        )
