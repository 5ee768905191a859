"""prediction_log.reasons: the reasons of a score (``POST /score?explain=true``), JSON text.

Nullable: scores without explanations keep NULL, so older rows need no backfill.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable column."""
    op.add_column("prediction_log", sa.Column("reasons", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_column("reasons")
