"""Deployment.images: the images a deployment ran.

Image pruning keeps the images of an app's last few deployments, so a rollback
reuses them instead of rebuilding.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deployment") as batch:
        batch.add_column(sa.Column("images", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("deployment") as batch:
        batch.drop_column("images")
