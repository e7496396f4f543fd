"""Render a Manifest for one environment into a fully resolved ``DesiredEnvironment``.

Production runs every service with its routes' hosts as written. A preview
(``pr-<n>``) runs ``previews.services`` (default: all), gives each routed
service the host of ``previews.host``, and lays ``previews.env`` over each
service's env. References (``${{ ... }}``) are filled in last; a secret that
is not provided is a ``ManifestError`` naming the secret, never its value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from controller.errors import ManifestError, ManifestIssue
from controller.spec.fields import HOSTNAME, show
from controller.spec.interpolation import Reference, substitute
from controller.spec.models import Manifest, ServiceSpec
from controller.spec.source_map import Path, SourceMap
from controller.state import (
    BuildSource,
    DesiredEnvironment,
    DesiredService,
    EnvironmentKey,
    HealthCheck,
    Resources,
    Route,
)

_PREVIEW_ENV = re.compile(r"^pr-(\d+)$")
_HOSTNAME = re.compile(HOSTNAME)
BRANCH_SLUG_LENGTH = 30


@dataclass(frozen=True)
class RenderContext:
    key: EnvironmentKey
    revision: str
    base_domain: str = "localhost"
    build_ids: Mapping[str, str] = field(default_factory=dict)
    """Per built service: the content id of its build context at the revision."""
    pr_number: int | None = None
    drain_seconds: float = 2.0
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The app's secrets by name; only those the manifest references are used."""
    branch: str | None = None
    """The branch being deployed (a preview's head branch), for ``{branch_slug}``."""
    url_scheme: str = "http"
    """Scheme of public URLs given by ``${{ services.<name>.url }}``."""

    @property
    def preview_number(self) -> int | None:
        """The PR number when this environment is a preview, else None."""
        if self.pr_number is not None:
            return self.pr_number
        match = _PREVIEW_ENV.fullmatch(self.key.env)
        return int(match.group(1)) if match else None


def build_sources(manifest: Manifest) -> dict[str, BuildSource]:
    """The services that are built from the repository, and from where."""
    return {
        name: _build_source(svc)
        for name, svc in manifest.service_specs().items()
        if svc.build is not None
    }


def _build_source(svc: ServiceSpec) -> BuildSource:
    assert svc.build is not None
    return BuildSource(
        context=svc.build.context,
        dockerfile=svc.build.dockerfile,
        args=tuple(sorted(svc.build.args.items())),
        target=svc.build.target,
    )


def image_for(ctx: RenderContext, name: str, build: BuildSource) -> str:
    """Images are tagged by what they are built from, so an unchanged service keeps its image."""
    content = ctx.build_ids.get(name, ctx.revision)
    digest = hashlib.sha256(
        repr((content, build.dockerfile, build.args, build.target)).encode()
    ).hexdigest()[:16]
    return f"railyard/{ctx.key.tenant}-{ctx.key.app}-{name}:{digest}"


def _healthcheck(svc: ServiceSpec) -> HealthCheck:
    """The service's check; without one, its port must accept connections (if it has one)."""
    check = svc.healthcheck
    if check is None:
        return HealthCheck(port=svc.port)
    return HealthCheck(
        path=check.path,
        port=check.port or svc.port,
        interval=check.interval,
        timeout=check.timeout,
        retries=check.retries,
        start_period=check.start_period,
    )


def _resources(svc: ServiceSpec) -> Resources:
    limits = svc.resources
    if limits is None:
        return Resources()
    return Resources(memory_bytes=limits.memory, cpus=limits.cpus, pids=limits.pids)


def branch_slug(branch: str) -> str:
    """``feature/Add_Login`` -> ``feature-add-login``: safe inside one DNS label."""
    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")
    return slug[:BRANCH_SLUG_LENGTH].rstrip("-")


def render_environment(manifest: Manifest, ctx: RenderContext) -> DesiredEnvironment:
    renderer = _Renderer(manifest, ctx)
    services = tuple(renderer.service(name) for name in sorted(renderer.names))
    if renderer.issues:
        raise ManifestError(renderer.issues, filename=renderer.source.filename)
    return DesiredEnvironment(key=ctx.key, revision=ctx.revision, services=services)


class _Renderer:
    def __init__(self, manifest: Manifest, ctx: RenderContext) -> None:
        self.manifest = manifest
        self.ctx = ctx
        self.specs = manifest.service_specs()
        self.source = manifest.source or SourceMap("paas.yaml")
        self.issues: list[ManifestIssue] = []
        self.pr = ctx.preview_number
        previews = manifest.previews
        if manifest.compose is not None and not self.specs:
            self._fail(("compose",), "the Compose file was not loaded (call load_compose first)")
        if self.pr is None:
            self.names = list(self.specs)
        else:
            if not previews.enabled:
                self._fail(("previews", "enabled"), "previews are disabled for this app")
            chosen = previews.services if previews.services is not None else tuple(self.specs)
            self.names = [name for name in chosen if name in self.specs]
        self.routes = {name: self._routes(name) for name in self.names}

    def _fail(self, path: Path, message: str) -> NoReturn:
        issue = self.source.issue(path, message)
        raise ManifestError([issue], filename=self.source.filename)

    def _routes(self, name: str) -> tuple[Route, ...]:
        routes = self.specs[name].routes
        if self.pr is None:
            return tuple(Route(r.host, r.path, r.strip_prefix) for r in routes)
        host = self._preview_host(name) if routes else ""
        unique = dict.fromkeys((route.path, route.strip_prefix) for route in routes)
        return tuple(Route(host, path, strip) for path, strip in unique)

    def _preview_host(self, service: str) -> str:
        template = self.manifest.previews.host
        slug = branch_slug(self.ctx.branch) if self.ctx.branch else ""
        if "{branch_slug}" in template and not slug:
            self._fail(("previews", "host"), "{branch_slug} needs the branch of the pull request")
        host = template.format(
            pr=self.pr,
            branch_slug=slug,
            app=self.ctx.key.app,
            service=service,
            base_domain=self.ctx.base_domain,
        )
        if not _HOSTNAME.fullmatch(host):
            self._fail(("previews", "host"), f"gives {show(host)}, which is not a valid host name")
        return host

    def service(self, name: str) -> DesiredService:
        svc = self.specs[name]
        build = _build_source(svc) if svc.build is not None else None
        deploy = svc.deploy
        drain = self.ctx.drain_seconds
        if deploy is not None and deploy.drain_seconds is not None:
            drain = deploy.drain_seconds
        return DesiredService(
            name=name,
            image=image_for(self.ctx, name, build) if build is not None else str(svc.image),
            build=build,
            port=svc.port,
            env=self._env(name, svc),
            command=svc.command,
            entrypoint=svc.entrypoint,
            replicas=svc.replicas,
            healthcheck=_healthcheck(svc),
            resources=_resources(svc),
            routes=self.routes[name],
            depends_on=tuple(d for d in svc.depends_on if d in self.names),
            strategy=deploy.strategy if deploy is not None else "rolling",
            drain_seconds=drain,
            release=svc.release,
            volumes=tuple((volume.name, volume.path) for volume in svc.volumes),
            read_only=svc.read_only,
            capabilities=svc.capabilities,
        )

    def _env(self, name: str, svc: ServiceSpec) -> tuple[tuple[str, str], ...]:
        values: dict[str, tuple[Path, str]] = {
            key: (("services", name, "env", key), value) for key, value in svc.env.items()
        }
        if self.pr is not None:
            for key, value in self.manifest.previews.env.items():
                values[key] = (("previews", "env", key), value)
        rendered = {key: self._fill(path, value) for key, (path, value) in values.items()}
        return tuple(sorted(rendered.items()))

    def _fill(self, path: Path, value: str) -> str:
        def resolve(reference: Reference) -> str:
            return self._resolve(reference, path)

        return substitute(value, resolve)

    def _resolve(self, reference: Reference, path: Path) -> str:
        if reference.namespace == "secrets":
            return self._secret(reference.name, path)
        if reference.namespace == "railyard":
            return self._fact(reference.name)
        return self._service_fact(reference, path)

    def _secret(self, name: str, path: Path) -> str:
        shared = self.manifest.previews.secrets
        if self.pr is not None and name not in shared:
            self._problem(
                path, f"secret {show(name)} is not shared with previews (previews.secrets)"
            )
            return ""
        value = self.ctx.secrets.get(name)
        if value is None:
            self._problem(
                path, f"secret {show(name)} is not set for this app; add it to its secrets"
            )
            return ""
        return value

    def _problem(self, path: Path, message: str) -> None:
        self.issues.append(self.source.issue(path, message))

    def _fact(self, name: str) -> str:
        facts = {
            "pr": str(self.pr) if self.pr is not None else "",
            "revision": self.ctx.revision,
            "environment": self.ctx.key.env,
            "branch": self.ctx.branch or "",
            "app": self.ctx.key.app,
        }
        return facts[name]

    def _service_fact(self, reference: Reference, path: Path) -> str:
        target = self.specs.get(reference.name)
        if target is None or reference.name not in self.names:
            self._problem(path, f"{reference}: service {show(reference.name)} does not run here")
            return ""
        if reference.attribute == "internal_url":
            return f"http://{reference.name}:{target.port}"
        routes = self.routes[reference.name]
        if not routes:
            self._problem(path, f"{reference}: service {show(reference.name)} has no routes")
            return ""
        first = routes[0]
        if reference.attribute == "host":
            return first.host
        suffix = "" if first.path == "/" else first.path
        return f"{self.ctx.url_scheme}://{first.host}{suffix}"


__all__ = [
    "RenderContext",
    "branch_slug",
    "build_sources",
    "image_for",
    "render_environment",
]
