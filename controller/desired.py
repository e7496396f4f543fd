"""What Git says should run: the manifest at a revision, rendered for one environment.

Reads ``paas.yaml`` (and its ``compose:`` file) from the source at that revision, tags
each built service by its build context's tree, fills in the app's secrets and checks
that every routed host is one the tenant may claim. Any problem is a ``ManifestError``
naming file, line and field: the reconciler records it and changes nothing that runs.
"""

from __future__ import annotations

from controller.errors import ManifestError
from controller.policy import host_issues
from controller.source.base import Source
from controller.spec import (
    Manifest,
    RenderContext,
    load_compose,
    parse_manifest,
    render_environment,
)
from controller.spec.render import build_sources
from controller.state import DesiredEnvironment, EnvironmentKey
from controller.store.crypto import SecretBox
from controller.store.db import Database
from controller.store.domains import DomainRepository
from controller.store.models import App, Environment
from controller.store.secrets import SecretRepository


class DesiredState:
    def __init__(
        self,
        database: Database,
        source: Source,
        *,
        base_domain: str,
        drain_seconds: float,
        secret_box: SecretBox | None,
    ) -> None:
        self.db = database
        self.source = source
        self.base_domain = base_domain
        self.drain_seconds = drain_seconds
        self.secret_box = secret_box

    async def read(
        self, app: App, environment: Environment, key: EnvironmentKey, revision: str
    ) -> DesiredEnvironment:
        manifest = await self.manifest(app, revision)
        return await self.render(app, environment, key, manifest, revision)

    async def manifest(self, app: App, revision: str) -> Manifest:
        path = app.manifest_path
        text = await self.source.read_file(app.repo_url, revision, path)
        if text is None:
            raise ManifestError.single(f"no {path} at revision {revision[:12]}", filename=path)
        manifest = parse_manifest(text, filename=path)
        if manifest.compose:
            compose_text = await self.source.read_file(app.repo_url, revision, manifest.compose)
            wanted = manifest.compose
            manifest = load_compose(manifest, lambda p: compose_text if p == wanted else None)
        return manifest

    async def render(
        self,
        app: App,
        environment: Environment,
        key: EnvironmentKey,
        manifest: Manifest,
        revision: str,
    ) -> DesiredEnvironment:
        build_ids = {
            name: await self.source.tree_id(app.repo_url, revision, build.context)
            for name, build in build_sources(manifest).items()
        }
        secrets: dict[str, str] = {}
        async with self.db.session() as session:
            if self.secret_box is not None:
                secrets = await SecretRepository(session, None).values(app.id, self.secret_box)
            owned = await DomainRepository(session, app.tenant_id).names()
        context = RenderContext(
            key=key,
            revision=revision,
            base_domain=self.base_domain,
            build_ids=build_ids,
            pr_number=environment.pr_number,
            drain_seconds=self.drain_seconds,
            branch=environment.ref,
            secrets=secrets,
        )
        desired = render_environment(manifest, context)
        issues = host_issues(desired, self.base_domain, owned, filename=app.manifest_path)
        if issues:
            raise ManifestError(issues, filename=app.manifest_path)
        return desired
