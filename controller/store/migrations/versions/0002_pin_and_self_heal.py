"""Environment.pinned_revision (rollback) and App.self_heal (drift: repair or only report).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("environment") as batch:
        batch.add_column(sa.Column("pinned_revision", sa.String(), nullable=True))
    with op.batch_alter_table("app") as batch:
        batch.add_column(
            sa.Column("self_heal", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("app") as batch:
        batch.drop_column("self_heal")
    with op.batch_alter_table("environment") as batch:
        batch.drop_column("pinned_revision")
