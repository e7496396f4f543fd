"""Secrets: per-app values, encrypted at rest, referenced as ${{ secrets.NAME }}.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "secret",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("tenant_id", sa.String(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("app_id", sa.String(), sa.ForeignKey("app.id"), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value_encrypted", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("app_id", "name", name="uq_secret_app_id_name"),
    )
    op.create_index("ix_secret_tenant_id", "secret", ["tenant_id"])
    op.create_index("ix_secret_app_id", "secret", ["app_id"])


def downgrade() -> None:
    op.drop_table("secret")
