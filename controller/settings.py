"""Settings, read from ``RAILYARD_*`` environment variables by ``load_settings()``.

Nothing reads the environment at import time: composition roots receive a
``Settings`` value, and tests build one directly.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAILYARD_", extra="ignore")

    home: Path = Field(default=Path(".railyard"), description="data directory")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default SQLite under HOME"
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL; unset means in-process broker and worker"
    )
    redis_namespace: str = Field(
        default="railyard",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="prefix of every Redis key (queues, locks): installations sharing one "
        "Redis database need different ones; API and workers of one need the same",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    edge_host: str = "127.0.0.1"
    edge_port: int = 8080
    base_domain: str = "localhost"
    router: Literal["nginx", "traefik"] = "nginx"
    runtime: Literal["docker"] = "docker"
    traefik_dynamic_dir: Path = Path("traefik/dynamic")
    nginx_binary: str = "nginx"
    poll_seconds: float = 60.0
    local_poll_seconds: float = 2.0
    resync_seconds: float = 30.0
    health_timeout_seconds: float = 60.0
    drain_seconds: float = 2.0
    allow_working_trees: bool = Field(
        default=True,
        description="let apps deploy a directory of this machine (dir://); turn off when "
        "tenants you do not trust can reach the API",
    )
    secret_key: SecretStr | None = Field(
        default=None, description="JWT signing key; generated under HOME when unset"
    )
    token_ttl_seconds: int = 30 * 24 * 3600
    public_url: str | None = Field(
        default=None,
        description="URL where webhooks reach the API; default http://API_HOST:API_PORT",
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.home / 'railyard.db').resolve()}"

    @property
    def api_url(self) -> str:
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def git_cache_dir(self) -> Path:
        return self.home / "git"

    @property
    def nginx_dir(self) -> Path:
        return self.home / "nginx"

    def instance_id(self) -> str:
        """A short id of this installation (HOME/instance), labelled on what it owns."""
        return _read_or_create(self.home / "instance", lambda: "ry" + secrets.token_hex(3))

    def signing_key(self) -> str:
        """The JWT key: from settings, else a random key kept in HOME/secret_key (0600)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return _read_or_create(self.home / "secret_key", lambda: secrets.token_urlsafe(48))


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The file's value, or a new one written once: processes starting together in one home
    (`railyard up` and `railyard worker`) all end up with the same value, never a partial
    one. The file is written whole under a temporary name (mode 0600), then linked into
    place, which fails if another process got there first."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(value)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        os.unlink(temporary)
    return value


def load_settings() -> Settings:
    return Settings()
