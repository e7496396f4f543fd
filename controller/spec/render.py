"""Render a Manifest for one environment into a fully resolved ``DesiredEnvironment``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from controller.spec.models import Manifest, ServiceSpec
from controller.state import (
    BuildSource,
    DesiredEnvironment,
    DesiredService,
    EnvironmentKey,
    HealthCheck,
    Route,
)


@dataclass(frozen=True)
class RenderContext:
    key: EnvironmentKey
    revision: str
    base_domain: str = "localhost"
    build_ids: Mapping[str, str] = field(default_factory=dict)
    """Per built service: the content id of its build context at the revision."""
    pr_number: int | None = None
    drain_seconds: float = 2.0


def build_sources(manifest: Manifest) -> dict[str, BuildSource]:
    """The services that are built from the repository, and from where."""
    return {
        name: BuildSource(context=svc.build.context, dockerfile=svc.build.dockerfile)
        for name, svc in manifest.services.items()
        if svc.build is not None
    }


def image_for(ctx: RenderContext, name: str, build: BuildSource) -> str:
    """Images are tagged by what they are built from, so an unchanged service keeps its image."""
    content = ctx.build_ids.get(name, ctx.revision)
    digest = hashlib.sha256(
        repr((content, build.dockerfile, build.args, build.target)).encode()
    ).hexdigest()[:16]
    return f"railyard/{ctx.key.tenant}-{ctx.key.app}-{name}:{digest}"


def _render_service(ctx: RenderContext, name: str, svc: ServiceSpec) -> DesiredService:
    build = (
        BuildSource(context=svc.build.context, dockerfile=svc.build.dockerfile)
        if svc.build is not None
        else None
    )
    image = image_for(ctx, name, build) if build is not None else str(svc.image)
    return DesiredService(
        name=name,
        image=image,
        build=build,
        port=svc.port,
        env=tuple(sorted(svc.env.items())),
        replicas=svc.replicas,
        healthcheck=HealthCheck(path=svc.healthcheck.path),
        routes=tuple(Route(host=route.host) for route in svc.routes),
        drain_seconds=ctx.drain_seconds,
    )


def render_environment(manifest: Manifest, ctx: RenderContext) -> DesiredEnvironment:
    services = tuple(
        _render_service(ctx, name, svc) for name, svc in sorted(manifest.services.items())
    )
    return DesiredEnvironment(key=ctx.key, revision=ctx.revision, services=services)
