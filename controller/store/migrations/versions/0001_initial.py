"""Initial schema: tenants, users, tokens, domains, apps, environments, deployments.

Written by hand from the models (plain SQL types, no library-specific column
types, explicit names for unique constraints so later batch migrations on
SQLite can drop them). ``tests/integration/test_migrations.py`` proves it
matches ``SQLModel.metadata``.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(), primary_key=True)


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tenant_id() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(), sa.ForeignKey("tenant.id"), nullable=False)


def upgrade() -> None:
    op.create_table("tenant", _id(), _text("name"), _time("created_at"))
    op.create_index("ix_tenant_name", "tenant", ["name"], unique=True)

    op.create_table(
        "user",
        _id(),
        _tenant_id(),
        _text("email"),
        _text("role"),
        _time("created_at"),
    )
    op.create_index("ix_user_tenant_id", "user", ["tenant_id"])
    op.create_index("ix_user_email", "user", ["email"], unique=True)

    op.create_table(
        "apitoken",
        _id(),
        _tenant_id(),
        sa.Column("user_id", sa.String(), sa.ForeignKey("user.id"), nullable=False),
        _text("name"),
        _time("created_at"),
        _time("expires_at"),
        _time("revoked_at", nullable=True),
    )
    op.create_index("ix_apitoken_tenant_id", "apitoken", ["tenant_id"])
    op.create_index("ix_apitoken_user_id", "apitoken", ["user_id"])

    op.create_table("domain", _id(), _tenant_id(), _text("name"), _time("created_at"))
    op.create_index("ix_domain_tenant_id", "domain", ["tenant_id"])
    op.create_index("ix_domain_name", "domain", ["name"], unique=True)

    op.create_table(
        "app",
        _id(),
        _tenant_id(),
        _text("name"),
        _text("repo_url"),
        _text("branch"),
        _text("manifest_path"),
        _text("webhook_secret_encrypted"),
        _text("last_seen_revision", nullable=True),
        _text("source_error", nullable=True),
        _time("created_at"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_app_tenant_id_name"),
    )
    op.create_index("ix_app_tenant_id", "app", ["tenant_id"])
    op.create_index("ix_app_name", "app", ["name"])

    op.create_table(
        "environment",
        _id(),
        _tenant_id(),
        sa.Column("app_id", sa.String(), sa.ForeignKey("app.id"), nullable=False),
        _text("name"),
        _text("kind"),
        _text("ref"),
        sa.Column("pr_number", sa.Integer(), nullable=True),
        _text("current_revision", nullable=True),
        _text("current_deployment_id", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.UniqueConstraint("app_id", "name", name="uq_environment_app_id_name"),
    )
    op.create_index("ix_environment_tenant_id", "environment", ["tenant_id"])
    op.create_index("ix_environment_app_id", "environment", ["app_id"])

    op.create_table(
        "deployment",
        _id(),
        _tenant_id(),
        sa.Column("app_id", sa.String(), sa.ForeignKey("app.id"), nullable=False),
        sa.Column("environment_id", sa.String(), sa.ForeignKey("environment.id"), nullable=False),
        _text("revision", nullable=True),
        _text("trigger"),
        _text("status"),
        _text("plan_summary"),
        _text("error", nullable=True),
        _time("created_at"),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
    )
    op.create_index("ix_deployment_tenant_id", "deployment", ["tenant_id"])
    op.create_index("ix_deployment_app_id", "deployment", ["app_id"])
    op.create_index("ix_deployment_environment_id", "deployment", ["environment_id"])
    op.create_index("ix_deployment_created_at", "deployment", ["created_at"])

    op.create_table(
        "deployment_event",
        _id(),
        _tenant_id(),
        sa.Column("deployment_id", sa.String(), sa.ForeignKey("deployment.id"), nullable=False),
        _time("created_at"),
        _text("level"),
        _text("reason"),
        _text("message"),
    )
    op.create_index("ix_deployment_event_tenant_id", "deployment_event", ["tenant_id"])
    op.create_index("ix_deployment_event_deployment_id", "deployment_event", ["deployment_id"])

    op.create_table(
        "webhook_delivery",
        _id(),
        _tenant_id(),
        sa.Column("app_id", sa.String(), sa.ForeignKey("app.id"), nullable=False),
        _text("provider"),
        _text("delivery_id"),
        _text("event"),
        _text("ref", nullable=True),
        _text("revision", nullable=True),
        _text("outcome"),
        _time("received_at"),
        sa.UniqueConstraint("app_id", "delivery_id", name="uq_webhook_delivery_app_id_delivery_id"),
    )
    op.create_index("ix_webhook_delivery_tenant_id", "webhook_delivery", ["tenant_id"])
    op.create_index("ix_webhook_delivery_app_id", "webhook_delivery", ["app_id"])
    op.create_index("ix_webhook_delivery_received_at", "webhook_delivery", ["received_at"])


def downgrade() -> None:
    # Dropping a table drops its indexes too; children go before their parents.
    for table in (
        "webhook_delivery",
        "deployment_event",
        "deployment",
        "environment",
        "app",
        "domain",
        "apitoken",
        "user",
        "tenant",
    ):
        op.drop_table(table)
