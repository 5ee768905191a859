"""Alembic environment of the operational store (``make migrate``; see ``store/migrate.py``)."""

from alembic import context
from sqlalchemy import create_engine

config = context.config


def _run(connection) -> None:  # noqa: ANN001 - a SQLAlchemy connection
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # pragma: no cover - the `alembic` CLI with sqlalchemy.url set
    with create_engine(config.get_main_option("sqlalchemy.url")).begin() as conn:
        _run(conn)
