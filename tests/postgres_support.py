"""Real-PostgreSQL test databases (``FRAUD_TEST_POSTGRES_URL``; see docs/serving.md, "Tests").

Each test that asks for ``postgres_url`` gets a fresh, uniquely named database on that server
(``fraud_test_<run>_<n>``); every database of the run is dropped at the end of the session. With
no server answering the tests skip, saying how to start one, except under ``CI=true``, where a
missing server fails them (CI can never go green by skipping).
"""

from __future__ import annotations

import os
import uuid

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
HOW_TO_START = (
    "no PostgreSQL answers at {url} (FRAUD_TEST_POSTGRES_URL): start one, e.g. "
    "`sudo service postgresql start` or `docker run -d -p 5432:5432 "
    "-e POSTGRES_HOST_AUTH_METHOD=trust postgres:16`, then create the database `test`"
)


def admin_url() -> str:
    """The server URL the tests use (``FRAUD_TEST_POSTGRES_URL``)."""
    return os.environ.get("FRAUD_TEST_POSTGRES_URL") or DEFAULT_URL


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (query string kept)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = name
    user = params.get("user", "")
    password = params.get("password")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    extra = {k: v for k, v in params.items() if k not in {"dbname", "user", "password", "host", "port"}}
    query = ("?" + make_conninfo(**extra).replace(" ", "&")) if extra else ""
    return f"postgresql://{auth}{host}:{port}/{name}{query}"


class PostgresDatabases:
    """Creates and drops the databases of one test run."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.run = f"fraud_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []

    def _admin(self):  # noqa: ANN202 - a psycopg connection
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=3)

    def check(self) -> None:
        """Raise when no server answers."""
        with self._admin() as conn:
            conn.execute("SELECT 1")

    def fresh(self) -> str:
        """The URL of a new empty database."""
        name = f"{self.run}_{len(self.created)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return with_database(self.url, name)

    def drop_all(self) -> None:
        """Drop every database of the run (closing their connections)."""
        if not self.created:
            return
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def require_server(databases: PostgresDatabases) -> None:
    """Skip (or under CI=true fail) when the server does not answer."""
    try:
        databases.check()
    except Exception as exc:  # psycopg.OperationalError and friends
        message = HOW_TO_START.format(url=databases.url) + f" ({type(exc).__name__})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
