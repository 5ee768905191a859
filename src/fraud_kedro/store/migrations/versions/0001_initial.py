"""The operational store: history, one prediction log with a role column, labels, meta.

On SQLite it also folds a pre-Alembic file (``prediction_log`` + ``shadow_prediction_log``) into
the one log.

Revision ID: 0001
Revises:
"""

from alembic import op

from fraud_kedro.store.schema import (
    POSTGRES_SCHEMA,
    SQLITE_SCHEMA,
    fold_legacy_sqlite,
    statements,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables (if missing)."""
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    for statement in statements(POSTGRES_SCHEMA if postgres else SQLITE_SCHEMA):
        op.execute(statement)
    if not postgres:

        def query(sql: str) -> list:
            result = bind.exec_driver_sql(sql)
            return result.fetchall() if result.returns_rows else []

        fold_legacy_sqlite(query)


def downgrade() -> None:
    """Drop the tables."""
    for table in ("label_log", "prediction_log", "model_versions", "transactions", "meta"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
