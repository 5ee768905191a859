"""Revision 0002: prediction_log.reasons on a store made at revision 0001 (both backends)."""

from __future__ import annotations

import pytest

from fraud_kedro.store import open_store
from fraud_kedro.store.migrate import HEAD, upgrade
from fraud_kedro.store.types import StoreConfigError


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_url")


def _columns(store) -> set[str]:
    def read(conn):
        cur = conn.execute("SELECT * FROM prediction_log WHERE 1 = 0")
        return {d[0] for d in cur.description}

    return store._write("test", read)


def test_migrate_adds_reasons_to_a_0001_store(store_url):
    assert HEAD == "0002"
    store = open_store(store_url)
    assert "reasons" in _columns(store)

    def back_to_0001(conn):
        conn.execute("ALTER TABLE prediction_log DROP COLUMN reasons")
        conn.execute("UPDATE alembic_version SET version_num = '0001'")

    store._write("test", back_to_0001)
    store.close()
    with pytest.raises(StoreConfigError, match="make migrate"):
        open_store(store_url)
    assert upgrade(store_url) == HEAD
    store = open_store(store_url)
    assert "reasons" in _columns(store)
    store.close()
