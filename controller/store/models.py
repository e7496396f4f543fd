"""SQLModel tables: the record of who owns what and what happened.

These rows are records, not truth: what runs is observed from the runtime and
router, what should run is read from Git. Every tenant-owned row carries
``tenant_id`` and every query on it filters by tenant.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class DeploymentStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SUPERSEDED = "superseded"
    DRIFTED = "drifted"
    """self_heal is off: drift was found and reported, nothing was changed."""

    @property
    def final(self) -> bool:
        return self not in (DeploymentStatus.PENDING, DeploymentStatus.RUNNING)


class Tenant(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = Field(unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    email: str = Field(unique=True, index=True)
    role: str = "owner"
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """An issued JWT, by its ``jti``: listed, and revocable."""

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    user_id: str = Field(foreign_key="user.id", index=True)
    name: str = "default"
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class Domain(SQLModel, table=True):
    """A domain a tenant owns: its apps may claim hosts under it."""

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    name: str = Field(unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class App(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    name: str = Field(index=True)
    repo_url: str
    branch: str = "main"
    manifest_path: str = "paas.yaml"
    webhook_secret_encrypted: str
    last_seen_revision: str | None = None
    source_error: str | None = None
    credentials_encrypted: str | None = None
    """HTTPS username and token for a private repository (encrypted; never returned)."""
    self_heal: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    """False: the periodic resync reports drift but does not repair it."""
    created_at: datetime = Field(default_factory=utcnow)


class Environment(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("app_id", "name"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    app_id: str = Field(foreign_key="app.id", index=True)
    name: str = "production"
    kind: str = "production"
    ref: str = "main"
    pr_number: int | None = None
    current_revision: str | None = None
    current_deployment_id: str | None = None
    pinned_revision: str | None = None
    """Set by a rollback: reconciles hold this revision until the next push or redeploy."""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


PENDING_ONLY = text("status = 'pending'")


class Deployment(SQLModel, table=True):
    # One pending notice per revision and environment: the webhook and the poller may
    # notice one push at the same moment, and a push is one deployment.
    __table_args__ = (
        Index(
            "uq_deployment_pending_revision",
            "environment_id",
            "revision",
            unique=True,
            sqlite_where=PENDING_ONLY,
            postgresql_where=PENDING_ONLY,
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    app_id: str = Field(foreign_key="app.id", index=True)
    environment_id: str = Field(foreign_key="environment.id", index=True)
    revision: str | None = None
    trigger: str = "push"
    status: str = DeploymentStatus.PENDING.value
    plan_summary: str = ""
    error: str | None = None
    images: str = Field(default="", sa_column_kwargs={"server_default": ""})
    """Space-separated image references the deployment ran (kept by image pruning)."""
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class DeploymentEvent(SQLModel, table=True):
    __tablename__ = "deployment_event"

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    deployment_id: str = Field(foreign_key="deployment.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    level: str = "info"
    reason: str
    message: str = ""


class Secret(SQLModel, table=True):
    """An app's secret, encrypted at rest; manifests reference it as ``${{ secrets.NAME }}``."""

    __table_args__ = (UniqueConstraint("app_id", "name"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    app_id: str = Field(foreign_key="app.id", index=True)
    name: str
    value_encrypted: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (UniqueConstraint("app_id", "delivery_id"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    app_id: str = Field(foreign_key="app.id", index=True)
    provider: str
    delivery_id: str
    event: str = ""
    ref: str | None = None
    revision: str | None = None
    outcome: str
    received_at: datetime = Field(default_factory=utcnow, index=True)
