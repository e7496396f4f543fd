"""Reconcile one environment: make what runs match what Git says.

A fixed skeleton, in the manner of Flux's controllers:

    load -> (gone? stop) -> interrupt stale records -> resolve revision -> read manifest
    -> render -> observe -> plan -> execute -> finally record status and events

Nothing recorded in the database is trusted over what is observed: a deployment left
"running" by a crashed worker is marked interrupted, and the plan is recomputed.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from controller.credentials import RepositoryCredentials
from controller.desired import DesiredState
from controller.errors import (
    ManifestError,
    NotFoundError,
    PermanentError,
    RailyardError,
    SourceError,
    TemporaryError,
)
from controller.executor import Executor
from controller.health import ProbeResult
from controller.liveness import probe_replicas, within_rollback_window
from controller.locks import Locks, merged_trigger
from controller.plan import Plan
from controller.planner import plan as make_plan
from controller.pruning import prune_images, prune_orphans
from controller.records import DeploymentRecords
from controller.router.base import Router
from controller.runtime.base import Runtime
from controller.source.base import Source
from controller.source.routing import is_working_tree
from controller.state import (
    DesiredEnvironment,
    EnvironmentKey,
    ObservedContainer,
    ObservedEnvironment,
)
from controller.store.crypto import SecretBox
from controller.store.db import Database
from controller.store.deployments import DeploymentRepository
from controller.store.models import (
    App,
    DeploymentStatus,
    Environment,
    utcnow,
)
from controller.store.repositories import AppRepository, EnvironmentRepository, TenantRepository

log = logging.getLogger(__name__)

NOT_RETRIED = frozenset({"health_check_failed", "build_failed", "release_failed"})
"""Failures of the revision itself: retrying the same revision would fail the same way."""


def worker_name() -> str:
    """Which process runs a deployment (several workers may share one database)."""
    return f"worker {socket.gethostname()} pid {os.getpid()}"


USER_TRIGGERS = frozenset({"push", "webhook", "poll", "redeploy", "app created", "watch"})
"""Triggers that deploy the branch head (and end a rollback)."""


@dataclass(frozen=True)
class Target:
    environment: Environment
    app: App
    key: EnvironmentKey
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class Preview:
    revision: str
    plan: Plan


@dataclass(frozen=True)
class Outcome:
    """What a reconcile did, for logs, tests and the CLI."""

    status: str
    deployment_id: str | None = None
    message: str = ""


class Reconciler:
    def __init__(
        self,
        *,
        database: Database,
        runtime: Runtime,
        router: Router,
        source: Source,
        executor: Executor,
        locks: Locks,
        base_domain: str = "localhost",
        drain_seconds: float = 2.0,
        instance: str = "",
        secret_box: SecretBox | None = None,
        credentials: RepositoryCredentials | None = None,
        clock: Callable[[], datetime] = utcnow,
        worker: str | None = None,
    ) -> None:
        self.db = database
        self.runtime = runtime
        self.router = router
        self.source = source
        self.executor = executor
        self.locks = locks
        self.base_domain = base_domain
        self.drain_seconds = drain_seconds
        self.instance = instance
        self.secret_box = secret_box
        self.credentials = credentials
        self.clock = clock
        self.worker = worker or worker_name()
        self.records = DeploymentRecords(database, clock)
        self.desired_state = DesiredState(
            database,
            source,
            base_domain=base_domain,
            drain_seconds=drain_seconds,
            secret_box=secret_box,
        )

    async def reconcile(self, environment_id: str, *, trigger: str = "resync") -> Outcome:
        """Converge one environment, unless another reconcile of it is running: then
        leave it a request and return at once; it runs once more when it ends (see
        ``locks``). No worker thread waits on a busy environment."""
        key = f"env:{environment_id}"
        outcome = Outcome("queued", message="another reconcile of it runs; it runs again after")
        asked = False
        while True:
            async with self.locks.try_hold(key) as held:
                if held:
                    requested = await self.locks.take_request(key)
                    trigger = merged_trigger(trigger, requested)
                    outcome = await self._reconcile_held(environment_id, trigger)
            if held:
                follow_up = await self.locks.take_request(key)
                if follow_up is None:
                    return outcome
                trigger = follow_up
            elif asked:
                return outcome  # left for the holder, which takes requests as it ends
            else:
                await self.locks.request(key, trigger)
                log.info("%s is busy: left a %s request for the reconcile holding it", key, trigger)
                asked = True  # and try once more: the holder may have ended meanwhile

    async def _reconcile_held(self, environment_id: str, trigger: str) -> Outcome:
        target = await self._load(environment_id)
        if target is None:
            return Outcome("gone", message=f"environment {environment_id} no longer exists")
        await self.records.interrupt_unfinished(target.environment.id)
        # Only pushes noticed before the head was read can be superseded by this run:
        # a notice that arrives later may be of a newer commit.
        target = replace(target, resolved_at=self.clock())
        revision = await self._resolve_revision(target, trigger)
        if revision != target.app.last_seen_revision:
            # Holding an earlier revision (a rollback, or the last good one): that is
            # no reason to supersede pushes of the branch head that wait their turn.
            target = replace(target, resolved_at=None)
        if is_working_tree(target.app.repo_url) and revision != target.app.last_seen_revision:
            # A working tree has only "now": an older revision cannot be rebuilt from it,
            # so hold what runs until the next save.
            return Outcome("unchanged", message="working tree: holding the last good version")
        return await self._converge(target, revision, trigger)

    async def _converge(self, target: Target, revision: str, trigger: str) -> Outcome:
        try:
            desired = await self._desired(target, revision)
        except ManifestError as exc:
            return await self._record_invalid_manifest(target, revision, trigger, exc)
        observed = await self.observe(desired)
        if trigger == "resync":
            observed, sick = await probe_replicas(desired, observed, self.executor.prober)
            if sick:
                earlier = await self._auto_rollback_target(target, revision, sick)
                if earlier is not None:
                    return await self._converge(target, earlier, "auto-rollback")
        plan = make_plan(desired, observed)
        if plan.empty:
            return await self._record_no_changes(target, desired, trigger)
        drift = trigger == "resync" and revision == target.environment.current_revision
        if drift and not target.app.self_heal:
            return await self._report_drift(target, revision, plan)
        return await self._deploy(target, desired, plan, trigger)

    async def _auto_rollback_target(
        self, target: Target, revision: str, sick: list[tuple[ObservedContainer, ProbeResult]]
    ) -> str | None:
        """The revision to return to when the new one turned unhealthy right after cutover."""
        environment = target.environment
        if environment.pinned_revision or revision != environment.current_revision:
            return None
        async with self.db.session() as session:
            history = await DeploymentRepository(session, None).list_for_environment(
                environment.id, limit=50
            )
        succeeded = [d for d in history if d.status == DeploymentStatus.SUCCEEDED.value]
        if not succeeded or succeeded[0].revision != revision:
            return None
        if not within_rollback_window(succeeded[0].finished_at, self.clock()):
            return None
        earlier = next((d for d in succeeded if d.revision and d.revision != revision), None)
        if earlier is None or earlier.revision is None:
            return None
        details = "; ".join(f"{c.name}: {r.detail}" for c, r in sick)
        await self.records.event(
            succeeded[0],
            "unhealthy_after_cutover",
            f"rolling back to {earlier.revision[:12]}: {details}",
            "error",
        )
        await self.records.update_environment(target.environment, pinned_revision=earlier.revision)
        return earlier.revision

    async def _report_drift(self, target: Target, revision: str, plan: Plan) -> Outcome:
        """self_heal: false — record what drifted, once, and change nothing."""
        last = await self.records.latest(target.environment.id)
        if (
            last
            and last.status == DeploymentStatus.DRIFTED.value
            and last.plan_summary == plan.summary()
        ):
            return Outcome("drifted", last.id, "drift already reported")
        deployment = await self.records.claim(
            target.environment,
            target.resolved_at,
            revision,
            "drift",
            DeploymentStatus.RUNNING,
            plan_summary=plan.summary(),
        )
        await self.records.event(
            deployment, "drift_detected", f"self_heal is off; not repairing:\n{plan}", "warning"
        )
        await self.records.finish(deployment, DeploymentStatus.DRIFTED)
        return Outcome("drifted", deployment.id, plan.summary())

    async def preview(self, environment_id: str) -> Preview:
        """The plan a reconcile would execute now, without executing it (a dry run).

        Raises ManifestError when the manifest at that revision is invalid."""
        target = await self._load(environment_id)
        if target is None:
            raise NotFoundError(f"environment '{environment_id}' not found")
        revision = await self._resolve_revision(target, "redeploy")
        desired = await self._desired(target, revision)
        return Preview(revision, make_plan(desired, await self.observe(desired)))

    async def prune_orphans(self) -> list[str]:
        return await prune_orphans(self.db, self.runtime, self.router, self.locks, self.instance)

    # -- sub-steps --------------------------------------------------------------------

    async def _load(self, environment_id: str) -> Target | None:
        async with self.db.session() as session:
            environment = await EnvironmentRepository(session, None).get(environment_id)
            if environment is None:
                return None
            app = await AppRepository(session, None).get(environment.app_id)
            tenant = await TenantRepository(session, None).get(environment.tenant_id)
            if app is None or tenant is None:
                return None
        key = EnvironmentKey(tenant.name, app.name, environment.name, self.instance)
        return Target(environment, app, key)

    async def _resolve_revision(self, target: Target, trigger: str) -> str:
        app = target.app
        if self.credentials is not None:
            self.credentials.load(app, self.secret_box)
        try:
            head = await self.source.resolve(app.repo_url, target.environment.ref)
        except (SourceError, TemporaryError) as exc:
            await self.records.update_app(app, source_error=exc.message)
            raise
        # The branch moved since anyone last looked: that is a push, whichever trigger
        # noticed it first (a resync may read the new head before the poller does).
        pushed = app.last_seen_revision is not None and app.last_seen_revision != head
        if app.source_error or app.last_seen_revision != head:
            await self.records.update_app(app, source_error=None, last_seen_revision=head)
        pinned = target.environment.pinned_revision
        if trigger == "rollback" and pinned:
            return pinned
        if trigger in USER_TRIGGERS or pushed:
            if pinned:
                # A push or an explicit redeploy ends a rollback.
                await self.records.update_environment(target.environment, pinned_revision=None)
            return head
        if pinned:
            return pinned
        # A periodic resync does not retry a revision that already failed: it keeps the
        # last good revision converged (drift repair) until a push or redeploy says otherwise.
        last = await self.records.latest(target.environment.id)
        current = target.environment.current_revision
        if last and last.revision == head and last.status == DeploymentStatus.FAILED and current:
            return current
        return head

    async def _desired(self, target: Target, revision: str) -> DesiredEnvironment:
        return await self.desired_state.read(target.app, target.environment, target.key, revision)

    async def observe(self, desired: DesiredEnvironment) -> ObservedEnvironment:
        containers = await self.runtime.list_containers(desired.key)
        routes = await self.router.observe(desired.key)
        images = frozenset(
            [s.image for s in desired.services if await self.runtime.image_exists(s.image)]
        )
        return ObservedEnvironment(tuple(containers), tuple(routes), images)

    async def _deploy(
        self, target: Target, desired: DesiredEnvironment, plan: Plan, trigger: str
    ) -> Outcome:
        revision = desired.revision
        if trigger == "resync" and revision == target.environment.current_revision:
            trigger = "drift"
        elif trigger == "resync" and revision == target.environment.pinned_revision:
            # The resync got to a rollback before the rollback's own message did.
            trigger = "rollback"
        deployment = await self.records.claim(
            target.environment,
            target.resolved_at,
            revision,
            trigger,
            DeploymentStatus.RUNNING,
            plan_summary=plan.summary(),
        )
        await self.records.event(deployment, "worker", f"run by {self.worker}")
        await self.records.event(deployment, "planned", str(plan))

        async def record(reason: str, message: str, level: str) -> None:
            await self.records.event(deployment, reason, message, level)

        try:
            await self.executor.execute(plan, desired, target.app.repo_url, record)
        except RailyardError as exc:
            await self.records.finish(deployment, DeploymentStatus.FAILED, error=exc.message)
            await self.records.event(deployment, "failed", _describe_failure(exc), "error")
            if isinstance(exc, PermanentError) or exc.code in (
                "health_check_failed",
                "build_failed",
            ):
                # The user must push a fix; retrying the same revision would fail the same way.
                return Outcome("failed", deployment.id, exc.message)
            raise
        if trigger == "drift":
            await self.records.event(deployment, "drift_repaired", plan.summary(), "warning")
        await self.records.finish(
            deployment, DeploymentStatus.SUCCEEDED, images=_images_of(desired)
        )
        await self.records.now_running(target.environment, revision, deployment.id)
        await prune_images(self.db, self.runtime, target.app, target.key)
        return Outcome("succeeded", deployment.id, plan.summary())

    async def _record_invalid_manifest(
        self, target: Target, revision: str, trigger: str, exc: ManifestError
    ) -> Outcome:
        last = await self.records.latest(target.environment.id)
        if last and last.revision == revision and last.status == DeploymentStatus.FAILED:
            return Outcome("failed", last.id, "manifest still invalid (already recorded)")
        deployment = await self.records.claim(
            target.environment, target.resolved_at, revision, trigger, DeploymentStatus.RUNNING
        )
        for issue in exc.issues:
            await self.records.event(deployment, "invalid_manifest", str(issue), "error")
        await self.records.finish(deployment, DeploymentStatus.FAILED, error=exc.message)
        return Outcome("failed", deployment.id, exc.message)

    async def _record_no_changes(
        self, target: Target, desired: DesiredEnvironment, trigger: str
    ) -> Outcome:
        revision = desired.revision
        if revision == target.environment.current_revision:
            await self.records.settle_pending(target.environment.id, revision, target.resolved_at)
            return Outcome("unchanged")
        deployment = await self.records.claim(
            target.environment,
            target.resolved_at,
            revision,
            trigger,
            DeploymentStatus.RUNNING,
            plan_summary="no changes",
        )
        await self.records.event(
            deployment, "no_changes", "what runs already matches this revision"
        )
        # It runs these images as much as a deployment that built them: pruning keeps
        # the images of the last successful deployments, so they must be on record.
        await self.records.finish(
            deployment, DeploymentStatus.SUCCEEDED, images=_images_of(desired)
        )
        await self.records.now_running(target.environment, revision, deployment.id)
        return Outcome("succeeded", deployment.id, "no changes")


def _images_of(desired: DesiredEnvironment) -> str:
    return " ".join(sorted({service.image for service in desired.services}))


def _describe_failure(exc: RailyardError) -> str:
    parts = [exc.message]
    for key in ("last_result", "log_tail"):
        value = exc.details.get(key)
        if value:
            parts.append(f"{key.replace('_', ' ')}:\n{value}")
    return "\n".join(parts)
