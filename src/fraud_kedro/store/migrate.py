"""Schema versions of the operational store (Alembic, ``migrations/``).

* An empty database gets the current schema and is stamped with :data:`HEAD` on first open (what
  Alembic's own docs advise for a fresh database), under a lock so that several workers or
  replicas starting at once create it once: PostgreSQL ``pg_advisory_xact_lock`` around
  transactional DDL, SQLite the writers' ``flock``.
* A database at an older known version is upgraded by ``make migrate``
  (``python -m fraud_kedro.store migrate``, :func:`upgrade`); the service refuses to start on it,
  and on a version it does not know, with a message that names the command and the setting.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fraud_kedro.store.connect import SETTING, backend_of, mask_url
from fraud_kedro.store.types import StoreConfigError

logger = logging.getLogger(__name__)

#: The schema version this release writes (the newest Alembic revision).
HEAD = "0002"
#: Every revision this release knows, oldest first.
KNOWN = ("0001", "0002")
#: ``pg_advisory_xact_lock`` key of schema creation and migration.
MIGRATION_LOCK = 0x46524D47  # "FRMG"
VERSION_TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)
_SCRIPTS = Path(__file__).with_name("migrations")


def check_version(version: str | None, url: str) -> bool:
    """Whether the store may be used at ``version`` (False: it is empty and must be created).

    Raises:
        StoreConfigError: An older version (run ``make migrate``) or an unknown one.
    """
    if version == HEAD:
        return True
    if version is None:
        return False
    where = f"{SETTING}={mask_url(url)}"
    if version in KNOWN:
        raise StoreConfigError(
            f"{where}: the store's schema version {version} is older than this release's {HEAD}; "
            "upgrade it with `make migrate` (python -m fraud_kedro.store migrate)"
        )
    raise StoreConfigError(
        f"{where}: the store's schema version {version!r} is unknown to this release (it knows "
        f"{', '.join(KNOWN)}): run `make migrate` with the release that wrote it, or point "
        f"{SETTING} at another database"
    )


def _alembic_config(connection: object) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def upgrade(url: str, revision: str = "head") -> str:
    """Upgrade the store at ``url`` to ``revision`` (``make migrate``); creates an empty one.

    Returns:
        The version the store is at afterwards.

    Raises:
        StoreConfigError: The store's version is unknown to this release, or the URL is wrong.
    """
    from sqlalchemy import create_engine, text

    kind, target = backend_of(url)
    if kind == "sqlite":
        from fraud_kedro.store.sqlite import SqliteStateStore

        engine = create_engine(f"sqlite:///{target}")
        lock = SqliteStateStore.file_lock(target)
    else:
        engine = create_engine(target.replace("postgresql://", "postgresql+psycopg://", 1))
        lock = None
    try:
        with engine.connect() as outer:
            if kind == "postgresql":  # held across the transaction below (see postgres.py)
                outer.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
                outer.commit()
            try:
                version = _upgrade_in(outer, url, revision)
            finally:
                if kind == "postgresql":
                    outer.rollback()
                    outer.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                    outer.commit()
    finally:
        if lock is not None:
            lock.release()
        engine.dispose()
    logger.info("store %s at schema version %s", mask_url(url), version)
    return str(version)


def _upgrade_in(conn: Any, url: str, revision: str) -> str:
    from alembic import command
    from alembic.util.exc import CommandError
    from sqlalchemy import text

    with conn.begin():
        try:
            command.upgrade(_alembic_config(conn), revision)
        except CommandError as exc:
            raise StoreConfigError(
                f"{SETTING}={mask_url(url)}: cannot migrate: {exc} (a schema version this "
                "release does not know?)"
            ) from exc
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(version)
