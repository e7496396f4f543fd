"""The record of deployments: what was asked for, what ran, and why.

Records are never trusted over what is observed; they are how a user finds out
what happened. Triggers note a push at once as a *pending* deployment of its
revision (``note_pending``), so `railyard deployments` shows it queued. The
reconcile that follows claims the pending record of the revision it deploys and
marks older notices *superseded*: the last commit wins. A notice that arrived
after the reconcile read the branch head may be of a newer commit, so it is left
for the next reconcile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from controller.errors import ConflictError
from controller.store.db import Database
from controller.store.deployments import DeploymentRepository
from controller.store.models import App, Deployment, DeploymentStatus, Environment
from controller.store.repositories import AppRepository, EnvironmentRepository

log = logging.getLogger(__name__)


async def note_pending(
    database: Database, environment_id: str, revision: str, trigger: str
) -> None:
    """Record ``revision`` as pending for the environment, once (a redelivery adds nothing,
    and neither does a second trigger noticing the same push at the same moment: a unique
    index allows one pending record per revision)."""
    try:
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
    except ConflictError:
        return  # noted by the other trigger, between our look and our write


class DeploymentRecords:
    """Writes deployment, environment and app records for the reconciler (system scope)."""

    def __init__(self, database: Database, clock: Callable[[], datetime]) -> None:
        self.db = database
        self.clock = clock

    async def latest(self, environment_id: str) -> Deployment | None:
        async with self.db.session() as session:
            found = await DeploymentRepository(session, None).list_for_environment(
                environment_id, limit=1
            )
        return found[0] if found else None

    async def interrupt_unfinished(self, environment_id: str) -> None:
        """Called under the environment's lock: anything still 'running' died with its worker."""
        async with self.db.session() as session:
            repo = DeploymentRepository(session, None)
            for stale in await repo.unfinished(environment_id):
                if stale.status != DeploymentStatus.RUNNING.value:
                    continue
                await repo.update(
                    stale,
                    status=DeploymentStatus.INTERRUPTED.value,
                    finished_at=self.clock(),
                    error="the worker stopped before this deployment finished; re-planned",
                )
                await repo.add_event(
                    stale, "interrupted", "worker stopped mid-deploy", level="warning"
                )

    async def claim(
        self,
        environment: Environment,
        resolved_at: datetime | None,
        revision: str,
        trigger: str,
        status: DeploymentStatus,
        *,
        plan_summary: str = "",
    ) -> Deployment:
        """The record of this run: the pending one of ``revision`` if a trigger noted it,
        else a new one; older notices of other revisions are superseded."""
        async with self.db.session() as session:
            repo = DeploymentRepository(session, None)
            claimed: Deployment | None = None
            for pending in await repo.unfinished(environment.id):
                if pending.status != DeploymentStatus.PENDING.value:
                    continue
                if pending.revision == revision and claimed is None:
                    claimed = pending
                    continue
                if _noticed_before(pending, resolved_at):
                    await self._supersede(repo, pending, revision)
            if claimed is None:
                claimed = await repo.create(
                    environment, revision=revision, trigger=trigger, status=status
                )
            return await repo.update(
                claimed, status=status.value, started_at=self.clock(), plan_summary=plan_summary
            )

    async def settle_pending(
        self, environment_id: str, revision: str, resolved_at: datetime | None
    ) -> None:
        """Pending records of what already runs are done; older others are superseded by it."""
        async with self.db.session() as session:
            repo = DeploymentRepository(session, None)
            for pending in await repo.unfinished(environment_id):
                if pending.status != DeploymentStatus.PENDING.value:
                    continue
                if pending.revision == revision:
                    await repo.update(
                        pending,
                        status=DeploymentStatus.SUCCEEDED.value,
                        finished_at=self.clock(),
                        plan_summary="no changes",
                    )
                    await repo.add_event(pending, "no_changes", "this revision already runs")
                elif _noticed_before(pending, resolved_at):
                    await self._supersede(repo, pending, revision)

    async def _supersede(self, repo: DeploymentRepository, pending: Deployment, by: str) -> None:
        await repo.update(
            pending,
            status=DeploymentStatus.SUPERSEDED.value,
            finished_at=self.clock(),
            error=f"superseded by revision {by[:12]}",
        )
        await repo.add_event(pending, "superseded", f"a newer revision {by[:12]} was deployed")

    async def finish(
        self,
        deployment: Deployment,
        status: DeploymentStatus,
        *,
        error: str | None = None,
        images: str = "",
    ) -> None:
        async with self.db.session() as session:
            await DeploymentRepository(session, None).update(
                deployment,
                status=status.value,
                finished_at=self.clock(),
                error=error,
                images=images,
            )

    async def event(
        self, deployment: Deployment, reason: str, message: str = "", level: str = "info"
    ) -> None:
        log.info("deployment %s: %s: %s", deployment.id[:8], reason, message)
        async with self.db.session() as session:
            await DeploymentRepository(session, None).add_event(
                deployment, reason, message, level=level
            )

    async def now_running(
        self, environment: Environment, revision: str, deployment_id: str
    ) -> None:
        await self.update_environment(
            environment,
            current_revision=revision,
            current_deployment_id=deployment_id,
            updated_at=self.clock(),
        )

    async def update_environment(self, environment: Environment, **fields: object) -> None:
        async with self.db.session() as session:
            await EnvironmentRepository(session, None).update(environment, **fields)

    async def update_app(self, app: App, **fields: object) -> None:
        async with self.db.session() as session:
            await AppRepository(session, None).update(app, **fields)


def _noticed_before(pending: Deployment, resolved_at: datetime | None) -> bool:
    if resolved_at is None:
        return False
    created = pending.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=resolved_at.tzinfo)
    return created <= resolved_at
