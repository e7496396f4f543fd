"""Reconcile one environment: make what runs match what Git says.

A fixed skeleton, in the manner of Flux's controllers:

    load -> (gone? stop) -> interrupt stale records -> resolve revision -> read manifest
    -> render -> observe -> plan -> execute -> finally record status and events

Nothing recorded in the database is trusted over what is observed: a deployment left
"running" by a crashed worker is marked interrupted, and the plan is recomputed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

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
from controller.locks import Locks
from controller.plan import Plan
from controller.planner import plan as make_plan
from controller.router.base import Router
from controller.runtime.base import Runtime
from controller.source.base import Source
from controller.source.routing import is_working_tree
from controller.spec import (
    Manifest,
    RenderContext,
    load_compose,
    parse_manifest,
    render_environment,
)
from controller.spec.render import build_sources
from controller.state import (
    DesiredEnvironment,
    EnvironmentKey,
    ObservedContainer,
    ObservedEnvironment,
)
from controller.store.crypto import SecretBox
from controller.store.db import Database
from controller.store.models import (
    App,
    Deployment,
    DeploymentStatus,
    Environment,
    utcnow,
)
from controller.store.repositories import (
    AppRepository,
    DeploymentRepository,
    EnvironmentRepository,
    TenantRepository,
)
from controller.store.secrets import SecretRepository

log = logging.getLogger(__name__)

NOT_RETRIED = frozenset({"health_check_failed", "build_failed", "release_failed"})
"""Failures of the revision itself: retrying the same revision would fail the same way."""

KEEP_IMAGES_OF_LAST = 5
"""Images of this many recent successful deployments of an app are kept (fast rollback)."""

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
        clock: Callable[[], datetime] = utcnow,
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
        self.clock = clock

    async def reconcile(self, environment_id: str, *, trigger: str = "resync") -> Outcome:
        async with self.locks.hold(f"env:{environment_id}"):
            target = await self._load(environment_id)
            if target is None:
                return Outcome("gone", message=f"environment {environment_id} no longer exists")
            await self._interrupt_unfinished(target)
            # Only pushes noticed before the head was read can be superseded by this run:
            # a notice that arrives later may be of a newer commit.
            target = replace(target, resolved_at=self.clock())
            revision = await self._resolve_revision(target, trigger)
            if is_working_tree(target.app.repo_url) and revision != target.app.last_seen_revision:
                # A working tree has only "now": an older revision cannot be rebuilt from it,
                # so hold what runs until the next save.
                return Outcome("unchanged", message="working tree: holding the last good version")
            return await self._converge(target, revision, trigger)

    async def _converge(self, target: Target, revision: str, trigger: str) -> Outcome:
        try:
            manifest = await self._read_manifest(target, revision)
            desired = await self._render(target, manifest, revision)
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
            return await self._record_no_changes(target, revision, trigger)
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
        await self._event(
            succeeded[0],
            "unhealthy_after_cutover",
            f"rolling back to {earlier.revision[:12]}: {details}",
            "error",
        )
        await self._set_environment(target, pinned_revision=earlier.revision)
        return earlier.revision

    async def _report_drift(self, target: Target, revision: str, plan: Plan) -> Outcome:
        """self_heal: false — record what drifted, once, and change nothing."""
        last = await self._latest_deployment(target)
        if (
            last
            and last.status == DeploymentStatus.DRIFTED.value
            and last.plan_summary == plan.summary()
        ):
            return Outcome("drifted", last.id, "drift already reported")
        deployment = await self._create_deployment(
            target, revision, "drift", DeploymentStatus.RUNNING, plan_summary=plan.summary()
        )
        await self._event(
            deployment, "drift_detected", f"self_heal is off; not repairing:\n{plan}", "warning"
        )
        await self._finish(deployment, DeploymentStatus.DRIFTED)
        return Outcome("drifted", deployment.id, plan.summary())

    async def preview(self, environment_id: str) -> Preview:
        """The plan a reconcile would execute now, without executing it (a dry run).

        Raises ManifestError when the manifest at that revision is invalid."""
        target = await self._load(environment_id)
        if target is None:
            raise NotFoundError(f"environment '{environment_id}' not found")
        revision = await self._resolve_revision(target, "redeploy")
        manifest = await self._read_manifest(target, revision)
        desired = await self._render(target, manifest, revision)
        return Preview(revision, make_plan(desired, await self.observe(desired)))

    async def prune_orphans(self) -> list[str]:
        """Remove what carries our labels but belongs to no environment on record.

        This is how deleting an app (or a crash halfway through deleting one) ends
        with nothing left running: ownership is by label, so only our things go."""
        async with self.db.session() as session:
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
                known.add(EnvironmentKey(tenant.name, app.name, environment.name, self.instance))
        removed: list[str] = []
        for container in await self.runtime.list_containers():
            owner = container.environment
            if owner is not None and owner.instance == self.instance and owner not in known:
                async with self.locks.hold(f"orphan:{owner.slug}"):
                    await self.runtime.remove_container(container.id)
                removed.append(container.name)
        for key in await self.router.environments():
            if key.instance == self.instance and key not in known:
                await self.router.remove(key)
                removed.append(f"routes of {key}")
        for key in await self.runtime.list_networks():
            if key.instance == self.instance and key not in known:
                await self.runtime.remove_environment_resources(key)
                removed.append(f"network of {key}")
        if removed:
            log.info("pruned orphans: %s", ", ".join(removed))
        return removed

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

    async def _interrupt_unfinished(self, target: Target) -> None:
        """We hold the environment's lock, so anything still 'running' died with its worker."""
        async with self.db.session() as session:
            repo = DeploymentRepository(session, None)
            for stale in await repo.unfinished(target.environment.id):
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

    async def _resolve_revision(self, target: Target, trigger: str) -> str:
        app = target.app
        try:
            head = await self.source.resolve(app.repo_url, target.environment.ref)
        except (SourceError, TemporaryError) as exc:
            await self._update_app(app, source_error=exc.message)
            raise
        if app.source_error or app.last_seen_revision != head:
            await self._update_app(app, source_error=None, last_seen_revision=head)
        pinned = target.environment.pinned_revision
        if trigger == "rollback" and pinned:
            return pinned
        if trigger in USER_TRIGGERS:
            if pinned:
                # A push or an explicit redeploy ends a rollback.
                await self._set_environment(target, pinned_revision=None)
            return head
        if pinned:
            return pinned
        # A periodic resync does not retry a revision that already failed: it keeps the
        # last good revision converged (drift repair) until a push or redeploy says otherwise.
        last = await self._latest_deployment(target)
        current = target.environment.current_revision
        if last and last.revision == head and last.status == DeploymentStatus.FAILED and current:
            return current
        return head

    async def _read_manifest(self, target: Target, revision: str) -> Manifest:
        path = target.app.manifest_path
        text = await self.source.read_file(target.app.repo_url, revision, path)
        if text is None:
            raise ManifestError.single(f"no {path} at revision {revision[:12]}", filename=path)
        manifest = parse_manifest(text, filename=path)
        if manifest.compose:
            compose_text = await self.source.read_file(
                target.app.repo_url, revision, manifest.compose
            )
            wanted = manifest.compose
            manifest = load_compose(manifest, lambda p: compose_text if p == wanted else None)
        return manifest

    async def _render(
        self, target: Target, manifest: Manifest, revision: str
    ) -> DesiredEnvironment:
        build_ids = {
            name: await self.source.tree_id(target.app.repo_url, revision, build.context)
            for name, build in build_sources(manifest).items()
        }
        secrets: dict[str, str] = {}
        if self.secret_box is not None:
            async with self.db.session() as session:
                secrets = await SecretRepository(session, None).values(
                    target.app.id, self.secret_box
                )
        context = RenderContext(
            key=target.key,
            revision=revision,
            base_domain=self.base_domain,
            build_ids=build_ids,
            pr_number=target.environment.pr_number,
            drain_seconds=self.drain_seconds,
            branch=target.environment.ref,
            secrets=secrets,
        )
        return render_environment(manifest, context)

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
        if revision == target.environment.current_revision and trigger == "resync":
            trigger = "drift"
        deployment = await self._create_deployment(
            target, revision, trigger, DeploymentStatus.RUNNING, plan_summary=plan.summary()
        )
        await self._event(deployment, "planned", str(plan))

        async def record(reason: str, message: str, level: str) -> None:
            await self._event(deployment, reason, message, level)

        try:
            await self.executor.execute(plan, desired, target.app.repo_url, record)
        except RailyardError as exc:
            await self._finish(deployment, DeploymentStatus.FAILED, error=exc.message)
            await self._event(deployment, "failed", _describe_failure(exc), "error")
            if isinstance(exc, PermanentError) or exc.code in (
                "health_check_failed",
                "build_failed",
            ):
                # The user must push a fix; retrying the same revision would fail the same way.
                return Outcome("failed", deployment.id, exc.message)
            raise
        if trigger == "drift":
            await self._event(deployment, "drift_repaired", plan.summary(), "warning")
        images = " ".join(sorted({service.image for service in desired.services}))
        await self._finish(deployment, DeploymentStatus.SUCCEEDED, images=images)
        await self._update_environment(target, revision, deployment.id)
        await self._prune_images(target)
        return Outcome("succeeded", deployment.id, plan.summary())

    async def _prune_images(self, target: Target) -> None:
        """Remove the app's built images that none of its last deployments ran."""
        async with self.db.session() as session:
            history = await DeploymentRepository(session, None).list_for_app(
                target.app.id, limit=100
            )
        recent = [d for d in history if d.status == DeploymentStatus.SUCCEEDED.value]
        keep = {image for d in recent[:KEEP_IMAGES_OF_LAST] for image in d.images.split()}
        prefix = f"{target.key.tenant}-{target.key.app}-"
        try:
            removed = await self.runtime.prune_images(prefix, keep)
        except TemporaryError as exc:
            log.warning("image pruning of %s skipped: %s", target.app.name, exc.message)
            return
        if removed:
            log.info("pruned %d old image(s) of %s", len(removed), target.app.name)

    async def _record_invalid_manifest(
        self, target: Target, revision: str, trigger: str, exc: ManifestError
    ) -> Outcome:
        last = await self._latest_deployment(target)
        if last and last.revision == revision and last.status == DeploymentStatus.FAILED:
            return Outcome("failed", last.id, "manifest still invalid (already recorded)")
        deployment = await self._create_deployment(
            target, revision, trigger, DeploymentStatus.RUNNING
        )
        for issue in exc.issues:
            await self._event(deployment, "invalid_manifest", str(issue), "error")
        await self._finish(deployment, DeploymentStatus.FAILED, error=exc.message)
        return Outcome("failed", deployment.id, exc.message)

    async def _record_no_changes(self, target: Target, revision: str, trigger: str) -> Outcome:
        if revision == target.environment.current_revision:
            await self._settle_pending(target, revision)
            return Outcome("unchanged")
        deployment = await self._create_deployment(
            target, revision, trigger, DeploymentStatus.RUNNING, plan_summary="no changes"
        )
        await self._event(deployment, "no_changes", "what runs already matches this revision")
        await self._finish(deployment, DeploymentStatus.SUCCEEDED)
        await self._update_environment(target, revision, deployment.id)
        return Outcome("succeeded", deployment.id, "no changes")

    # -- records ----------------------------------------------------------------------

    async def _latest_deployment(self, target: Target) -> Deployment | None:
        async with self.db.session() as session:
            found = await DeploymentRepository(session, None).list_for_environment(
                target.environment.id, limit=1
            )
        return found[0] if found else None

    async def _create_deployment(
        self,
        target: Target,
        revision: str,
        trigger: str,
        status: DeploymentStatus,
        *,
        plan_summary: str = "",
    ) -> Deployment:
        async with self.db.session() as session:
            repo = DeploymentRepository(session, None)
            claimed: Deployment | None = None
            for pending in await repo.unfinished(target.environment.id):
                if pending.status != DeploymentStatus.PENDING.value:
                    continue
                if pending.revision == revision and claimed is None:
                    claimed = pending
                    continue
                if _noticed_before(pending, target.resolved_at):
                    await self._supersede(repo, pending, revision)
            if claimed is None:
                claimed = await repo.create(
                    target.environment, revision=revision, trigger=trigger, status=status
                )
            return await repo.update(
                claimed, status=status.value, started_at=self.clock(), plan_summary=plan_summary
            )

    async def _settle_pending(self, target: Target, revision: str) -> None:
        """Pending records of what already runs are done; others are superseded by it."""
        async with self.db.session() as session:
            repo = DeploymentRepository(session, None)
            for pending in await repo.unfinished(target.environment.id):
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
                elif _noticed_before(pending, target.resolved_at):
                    await self._supersede(repo, pending, revision)

    async def _supersede(self, repo: DeploymentRepository, pending: Deployment, by: str) -> None:
        await repo.update(
            pending,
            status=DeploymentStatus.SUPERSEDED.value,
            finished_at=self.clock(),
            error=f"superseded by revision {by[:12]}",
        )
        await repo.add_event(pending, "superseded", f"a newer revision {by[:12]} was deployed")

    async def _finish(
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

    async def _event(
        self, deployment: Deployment, reason: str, message: str = "", level: str = "info"
    ) -> None:
        log.info("deployment %s: %s: %s", deployment.id[:8], reason, message)
        async with self.db.session() as session:
            await DeploymentRepository(session, None).add_event(
                deployment, reason, message, level=level
            )

    async def _update_environment(self, target: Target, revision: str, deployment_id: str) -> None:
        async with self.db.session() as session:
            await EnvironmentRepository(session, None).update(
                target.environment,
                current_revision=revision,
                current_deployment_id=deployment_id,
                updated_at=self.clock(),
            )

    async def _set_environment(self, target: Target, **fields: object) -> None:
        async with self.db.session() as session:
            await EnvironmentRepository(session, None).update(target.environment, **fields)

    async def _update_app(self, app: App, **fields: object) -> None:
        async with self.db.session() as session:
            await AppRepository(session, None).update(app, **fields)


def _noticed_before(pending: Deployment, resolved_at: datetime | None) -> bool:
    if resolved_at is None:
        return False
    created = pending.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=resolved_at.tzinfo)
    return created <= resolved_at


def _describe_failure(exc: RailyardError) -> str:
    parts = [exc.message]
    for key in ("last_result", "log_tail"):
        value = exc.details.get(key)
        if value:
            parts.append(f"{key.replace('_', ' ')}:\n{value}")
    return "\n".join(parts)
