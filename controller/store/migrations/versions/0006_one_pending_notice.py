"""One pending deployment per revision and environment (a partial unique index).

The webhook and the poller could both record a push as pending at the same moment; the
second record was then "superseded by" its own revision. Duplicates already recorded are
settled first: the oldest notice of each revision stays pending, the others are marked
superseded.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_ONLY = sa.text("status = 'pending'")


def upgrade() -> None:
    op.execute(
        sa.text(
            """
            UPDATE deployment SET status = 'superseded',
                   error = 'a duplicate notice of the same revision'
            WHERE status = 'pending' AND EXISTS (
                SELECT 1 FROM deployment AS older
                WHERE older.status = 'pending'
                  AND older.environment_id = deployment.environment_id
                  AND older.revision = deployment.revision
                  AND (older.created_at < deployment.created_at
                       OR (older.created_at = deployment.created_at
                           AND older.id < deployment.id))
            )
            """
        )
    )
    op.create_index(
        "uq_deployment_pending_revision",
        "deployment",
        ["environment_id", "revision"],
        unique=True,
        sqlite_where=PENDING_ONLY,
        postgresql_where=PENDING_ONLY,
    )


def downgrade() -> None:
    op.drop_index("uq_deployment_pending_revision", table_name="deployment")
