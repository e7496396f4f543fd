"""App.credentials_encrypted: an HTTPS token for a private repository, encrypted at rest.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("app") as batch:
        batch.add_column(sa.Column("credentials_encrypted", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("app") as batch:
        batch.drop_column("credentials_encrypted")
