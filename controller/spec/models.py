"""The manifest's typed, frozen model (v1, thin: the walking-skeleton subset)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Build(Strict):
    context: str = "."
    dockerfile: str = "Dockerfile"


class HealthCheckSpec(Strict):
    path: str | None = None


class RouteSpec(Strict):
    host: str

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        if not HOSTNAME.match(value):
            raise ValueError(f"expected a DNS host name like 'app.example.com', got {value!r}")
        return value


class ServiceSpec(Strict):
    image: str | None = None
    build: Build | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    env: dict[str, str] = Field(default_factory=dict)
    replicas: int = Field(default=1, ge=0, le=100)
    healthcheck: HealthCheckSpec = Field(default_factory=HealthCheckSpec)
    routes: tuple[RouteSpec, ...] = ()

    @model_validator(mode="after")
    def _image_or_build(self) -> ServiceSpec:
        if (self.image is None) == (self.build is None):
            raise ValueError("set exactly one of 'image' or 'build'")
        if self.routes and self.port is None:
            raise ValueError("a service with routes needs a 'port'")
        return self


class Manifest(Strict):
    version: Literal[1]
    services: dict[str, ServiceSpec]

    @field_validator("services")
    @classmethod
    def _service_names(cls, value: dict[str, ServiceSpec]) -> dict[str, ServiceSpec]:
        if not value:
            raise ValueError("declare at least one service")
        for name in value:
            if not DNS_LABEL.match(name):
                raise ValueError(f"service name {name!r} must be a DNS label (a-z, 0-9, '-')")
        return value
