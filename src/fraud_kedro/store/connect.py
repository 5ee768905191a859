"""Opening the store from its setting: ``FRAUD_STATE_URL`` or a SQLite path (``FRAUD_STATE_DB``).

* ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's spelling), or a
  plain file path: the embedded SQLite backend.
* ``postgresql://USER[:PASSWORD]@HOST:PORT/DB`` (also ``postgres://`` and
  ``postgresql+psycopg://``): the shared PostgreSQL backend.

URLs are logged and put in errors only through :func:`mask_url` (no password).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fraud_kedro.store.interface import StateStore
from fraud_kedro.store.types import StoreConfigError

SETTING = "FRAUD_STATE_URL"
DEFAULT_STATE_DB = "data/07_model_output/serving_state.db"
_PG_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_PASSWORD = re.compile(r"(://[^:/@]*:)([^@]*)(@)")


def mask_url(url: str | os.PathLike[str]) -> str:
    """The URL with its password replaced by ``***`` (safe to log)."""
    text = str(url)
    text = _PASSWORD.sub(r"\1***\3", text)
    return re.sub(r"(password=)[^&\s]*", r"\1***", text, flags=re.IGNORECASE)


def state_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """The store setting: ``FRAUD_STATE_URL``, else ``FRAUD_STATE_DB`` (a SQLite path), else the
    default SQLite file."""
    env = os.environ if env is None else env
    return env.get(SETTING) or env.get("FRAUD_STATE_DB") or DEFAULT_STATE_DB


def backend_of(url: str | os.PathLike[str]) -> tuple[str, str]:
    """``("sqlite", path)`` or ``("postgresql", libpq URL)`` for a store setting.

    Raises:
        StoreConfigError: An unknown scheme (the message names ``FRAUD_STATE_URL``).
    """
    text = str(url)
    if "://" not in text:
        if not text.strip():
            raise StoreConfigError(f"{SETTING} is empty: give sqlite:///PATH or postgresql://...")
        return "sqlite", text
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise StoreConfigError(
                f"{SETTING}={mask_url(text)}: a SQLite URL is sqlite:///relative/path or "
                "sqlite:////absolute/path"
            )
        return "sqlite", rest[1:]
    if scheme in _PG_SCHEMES:
        return "postgresql", f"postgresql://{rest}"
    raise StoreConfigError(
        f"{SETTING}={mask_url(text)}: unknown scheme {scheme!r} (use sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DB)"
    )


def open_store(url: str | os.PathLike[str], **options: Any) -> StateStore:
    """Open (and create or migrate if empty) the store at ``url``.

    Args:
        url: ``FRAUD_STATE_URL`` or a SQLite path.
        **options: Backend options (SQLite: ``synchronous``, ``busy_timeout_ms``).

    Returns:
        The store.

    Raises:
        StoreConfigError: A wrong setting (scheme, schema version).
        StateStoreError: The store cannot be reached or opened.
    """
    kind, target = backend_of(url)
    if kind == "sqlite":
        from fraud_kedro.store.sqlite import SqliteStateStore

        return SqliteStateStore(target, **options)
    from fraud_kedro.store.postgres import PostgresStateStore

    return PostgresStateStore(target, **options)


def open_existing_store(url: str | os.PathLike[str]) -> StateStore:
    """Open a store that must already exist (readers: a missing SQLite file is an error).

    Raises:
        FileNotFoundError: A SQLite path that does not exist.
    """
    kind, target = backend_of(url)
    if kind == "sqlite" and not Path(target).exists():
        raise FileNotFoundError(f"no state store at {target}")
    return open_store(url)


def store_exists(url: str | os.PathLike[str]) -> bool:
    """Whether a SQLite file is there (always True for a server URL: it is asked when read)."""
    kind, target = backend_of(url)
    return kind != "sqlite" or Path(target).exists()
