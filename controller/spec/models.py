"""paas.yaml v1 as frozen, typed models: the single definition the parser and schema share.

Field descriptions here become the published JSON Schema's descriptions
(``python -m controller.spec.schema``), so they are written for the user.
Checks that span fields or services (dependencies, references, route clashes)
live in ``checks.py``, where each problem can name its exact place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    WithJsonSchema,
    model_validator,
)

from controller.spec.capabilities import ALLOWED_TEXT, Capabilities
from controller.spec.fields import (
    VOLUME_SCHEMA,
    CommandLine,
    EnvName,
    EnvValue,
    HealthPath,
    HostName,
    HostTemplate,
    ImageRef,
    MemoryBytes,
    Port,
    PreviewTtl,
    ProbeDuration,
    RepoPath,
    RoutePath,
    SecretName,
    ServiceName,
    StartPeriod,
    TextValue,
    VolumeInput,
    fail,
    show,
)
from controller.spec.source_map import Locator

MAX_REPLICAS = 20
DEFAULT_PREVIEW_HOST = "{service}-pr-{pr}.{app}.{base_domain}"
DEFAULT_PREVIEW_TTL = 7 * 86400.0


class Spec(BaseModel):
    """Unknown keys are errors; values never change after parsing."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _context_shorthand(value: Any) -> Any:
    return {"context": value} if isinstance(value, str) else value


def _version(value: Any) -> int:
    if type(value) is not int or value != 1:
        fail("version", f"this Railyard reads manifest version 1, got {show(value)}")
    return 1


class BuildSpec(Spec):
    """Build the image from the repository. A plain string is the context."""

    context: RepoPath = Field(".", description="Folder of the repository to build from.")
    dockerfile: RepoPath = Field(
        "Dockerfile", description="Path of the Dockerfile, relative to the context."
    )
    args: Mapping[EnvName, TextValue] = Field(
        default_factory=dict, description="Build arguments (ARG); numbers are taken as written."
    )
    target: str | None = Field(None, description="Stage of a multi-stage Dockerfile to build.")


class HealthCheckSpec(Spec):
    """When a new replica is ready: HTTP 2xx/3xx on ``path``, else its port accepts connections."""

    path: HealthPath | None = Field(None, description="HTTP path to GET, e.g. /healthz.")
    port: Port | None = Field(None, description="Port to check; defaults to the service's port.")
    interval: ProbeDuration = Field(
        0.5, description="Time between checks.", json_schema_extra={"default": "500ms"}
    )
    timeout: ProbeDuration = Field(
        2.0, description="How long one check may take.", json_schema_extra={"default": "2s"}
    )
    retries: Annotated[int, Strict(), Field(ge=1, le=100)] = Field(
        3, description="Failed checks in a row before a replica counts as unhealthy."
    )
    start_period: StartPeriod = Field(
        0.0,
        description="Grace time after start during which failures do not count.",
        json_schema_extra={"default": "0"},
    )


class ResourcesSpec(Spec):
    """Limits for each replica."""

    memory: MemoryBytes | None = Field(None, description="Memory limit, e.g. 256Mi or 1Gi.")
    cpus: Annotated[float, Strict(), Field(ge=0.01, le=64)] | None = Field(
        None, description="CPU limit in cores, e.g. 0.5."
    )
    pids: Annotated[int, Strict(), Field(ge=16, le=32768)] | None = Field(
        None, description="Most processes (and threads) a replica may run."
    )


class RouteSpec(Spec):
    """Send requests for ``host`` (and a path prefix) to this service's port."""

    host: HostName = Field(description="Lowercase DNS name, used as written in production.")
    path: RoutePath = Field("/", description="Path prefix this route matches.")
    strip_prefix: Annotated[bool, Strict()] = Field(
        False, description="Remove the path prefix before passing the request on."
    )


class VolumeSpec(Spec):
    """A named volume mounted into every replica (written ``name:/path``)."""

    name: str
    path: str


Volume = Annotated[VolumeSpec, VolumeInput, VOLUME_SCHEMA]


class DeploySpec(Spec):
    """How a new version replaces the old one."""

    strategy: Literal["rolling", "recreate"] = Field(
        "rolling",
        description="rolling: start new replicas, switch, then stop old ones (no downtime); "
        "recreate: stop old replicas first (for services that cannot run twice).",
    )
    drain_seconds: Annotated[float, Strict(), Field(ge=0, le=3600)] | None = Field(
        None, description="Seconds old replicas keep finishing requests after the switch."
    )


class ServiceSpec(Spec):
    """One service: an image or a build, how to run it, and how to reach it."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["image"], "properties": {"image": {"type": "string"}}},
                {"required": ["build"], "properties": {"build": {"type": ["string", "object"]}}},
            ]
        }
    )

    image: ImageRef | None = Field(None, description="Image to run, e.g. nginx:1.27.")
    build: Annotated[
        BuildSpec | None,
        BeforeValidator(_context_shorthand, json_schema_input_type=str | BuildSpec | None),
    ] = Field(None, description="Build from the repository; a string is the context folder.")
    command: CommandLine | None = Field(
        None, description="Arguments replacing the image's CMD; a string is split like a shell."
    )
    entrypoint: CommandLine | None = Field(
        None, description="Replaces the image's ENTRYPOINT; a string is split like a shell."
    )
    env: Mapping[EnvName, EnvValue] = Field(
        default_factory=dict, description="Environment variables."
    )
    port: Port | None = Field(None, description="Port the service listens on inside the container.")
    replicas: Annotated[int, Strict(), Field(ge=0, le=MAX_REPLICAS)] = Field(
        1, description="How many containers to run."
    )
    healthcheck: HealthCheckSpec | None = None
    resources: ResourcesSpec | None = None
    routes: tuple[RouteSpec, ...] = Field((), description="Public routes to this service.")
    depends_on: tuple[ServiceName, ...] = Field(
        (), description="Services to start (and find healthy) before this one."
    )
    release: CommandLine | None = Field(
        None,
        description="One-off command run from the new image before it takes traffic "
        "(e.g. database migrations); the deploy stops if it fails.",
    )
    volumes: tuple[Volume, ...] = Field((), description="Named volumes, as name:/path.")
    read_only: bool = Field(
        False,
        description="Mount the image's filesystem read-only; /tmp and /run stay writable "
        "(in memory), named volumes too.",
    )
    capabilities: Capabilities = Field(
        (),
        description=f"Linux capabilities to add back (all others stay dropped), from: "
        f"{ALLOWED_TEXT}. Written with or without CAP_, in any case.",
    )
    deploy: DeploySpec | None = None

    @model_validator(mode="after")
    def _image_or_build(self) -> ServiceSpec:
        if self.image is None and self.build is None:
            fail("image_or_build", 'set "image" (run an image) or "build" (build from the repo)')
        if self.image is not None and self.build is not None:
            fail("image_or_build", 'set only one of "image" and "build"')
        return self


class PreviewsSpec(Spec):
    """One environment per pull request, removed when the PR closes."""

    enabled: Annotated[bool, Strict()] = Field(
        True, description="Deploy pull requests (true once this section is written)."
    )
    host: HostTemplate = Field(
        DEFAULT_PREVIEW_HOST,
        description="Host of each routed service in a preview. Placeholders: {pr}, "
        "{branch_slug}, {app}, {service}, {base_domain}.",
    )
    ttl: PreviewTtl = Field(
        DEFAULT_PREVIEW_TTL,
        description="Remove a preview after this long without a push.",
        json_schema_extra={"default": "7d"},
    )
    env: Mapping[EnvName, EnvValue] = Field(
        default_factory=dict, description="Env values that replace or add to every service's env."
    )
    services: tuple[ServiceName, ...] | None = Field(
        None, description="Services to run in previews (default: all)."
    )
    secrets: tuple[SecretName, ...] = Field(
        (),
        description="Secrets previews may use. Others must be replaced in previews.env, "
        "so production secrets never reach a pull request unless listed here.",
    )
    require_approval_for_forks: Annotated[bool, Strict()] = Field(
        True, description="A PR from a fork is deployed only after a maintainer approves."
    )


class Manifest(Spec):
    """paas.yaml, version 1."""

    model_config = ConfigDict(
        title="Railyard paas.yaml",
        json_schema_extra={
            "oneOf": [
                {"required": ["services"], "properties": {"services": {"type": "object"}}},
                {"required": ["compose"], "properties": {"compose": {"type": "string"}}},
            ],
            "if": {"required": ["routes"], "properties": {"routes": {"type": "object"}}},
            "then": {"required": ["compose"], "properties": {"compose": {"type": "string"}}},
            "patternProperties": {"^x-": {"description": "Ignored; a place for YAML anchors."}},
        },
    )

    version: Annotated[int, BeforeValidator(_version), WithJsonSchema({"const": 1})] = Field(
        description="Manifest format version; always 1."
    )
    services: Mapping[ServiceName, ServiceSpec] | None = Field(
        None, description="The services of the app, by name (a DNS label)."
    )
    compose: RepoPath | None = Field(
        None, description="Take the services from this Docker Compose file instead of services."
    )
    routes: Mapping[ServiceName, tuple[RouteSpec, ...]] | None = Field(
        None, description="With compose: public routes for the Compose services, by service."
    )
    previews: PreviewsSpec = Field(
        default_factory=lambda: PreviewsSpec(enabled=False),
        description="Pull-request previews: on when this section is present "
        "(and enabled is not false), off when it is left out.",
        json_schema_extra={"default": {"enabled": False}},
    )

    _source: Locator | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _services_or_compose(self) -> Manifest:
        if self.services is None and self.compose is None:
            fail("services", 'declare "services" (or "compose": a Docker Compose file)')
        if self.services is not None and self.compose is not None:
            fail("services", 'use "services" or "compose", not both')
        if self.routes is not None and self.compose is None:
            fail(
                "routes", 'top-level "routes" goes with "compose"; else use services.<name>.routes'
            )
        if self.services is not None and not self.services:
            fail("services", "declare at least one service")
        return self

    @property
    def source(self) -> Locator | None:
        """Where each value was written, when the manifest came from text."""
        return self._source

    def with_source(self, source: Locator | None) -> Manifest:
        self._source = source
        return self

    def service_specs(self) -> Mapping[str, ServiceSpec]:
        """The services; empty until ``load_compose`` has filled in a Compose manifest."""
        return self.services or {}
