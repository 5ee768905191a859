"""Both backends behind the one Protocol: same answers, migrations, start-up errors, seeding once.

The PostgreSQL cases use a fresh database of the run on ``FRAUD_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from test_store_sqlite import _rows, _score  # noqa: E402

from fraud_kedro.features import FeatureParams, HistoryWindow
from fraud_kedro.store import (
    DuplicateTransactionError,
    StateStore,
    StateStoreError,
    StoreConfigError,
    open_store,
    read_label_log,
    read_prediction_log,
    seed_history,
)
from fraud_kedro.store.migrate import HEAD, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_url")


def _mixed_rows() -> list[SimpleNamespace]:
    rows = _rows([10, 11])
    rows[1].customer_id, rows[1].customer_key = "A17", "A17"  # a text id
    rows[1].terminal_id, rows[1].terminal_key = "17", 17  # "17" sent, key 17
    return rows


def test_backends_answer_the_same(store_url):
    store = open_store(store_url)
    assert isinstance(store, StateStore)
    rows = _rows([1, 2, 3]) + _mixed_rows()
    _score(store, rows)
    _score(store, rows[:2], shadow=True)
    with pytest.raises(DuplicateTransactionError) as dup:
        _score(store, _rows([3, 4]))
    assert dup.value.ids == [3]
    assert store.count("transactions") == 5 and store.count("prediction_log") == 7

    window = HistoryWindow(0, 2**62, 0, 2**62)
    history = store.history([0, 1, "A17"], [17], window)
    assert sorted(history.transaction_id.tolist()) == [1, 3, 10, 11]
    assert history.customer_key.dtype == object and "A17" in history.customer_key.tolist()

    rows_, horizon, last_seq, last_label = store.history_snapshot(400_000)
    assert [r[1] for r in rows_] == [1, 2, 3, 10, 11] and last_label == 0
    assert rows_[-1][3:5] == ("A17", 17)
    assert (
        store.record_labels(
            [SimpleNamespace(transaction_id=2, is_fraud=1), SimpleNamespace(transaction_id=99, is_fraud=0)],
            datetime(2024, 3, 21),
        )
        == 1
    )
    new_rows, labels = store.changes_since(rows_[2][0], last_label)
    assert [r[1] for r in new_rows] == [10, 11]
    assert [(seq, label) for _, seq, label in labels] == [(rows_[1][0], 1)]

    logged = store.logged_predictions([1, 11, 99])
    assert set(logged) == {1, 11} and logged[11].terminal_id == "17" and logged[11].customer_id == "A17"
    assert logged[1].timestamp == "2024-03-01T10:00:01.000000"

    log = read_prediction_log(store)
    assert log["transaction_id"].tolist() == [1, 2, 3, 10, 11]
    assert log["terminal_id"].tolist()[-1] == "17" and log["hour"].dtype == np.int64
    assert len(read_prediction_log(store, shadow=True)) == 2
    labels_frame = read_label_log(store)
    assert labels_frame["transaction_id"].tolist() == [2, 99]
    store.set_meta("k", "v")
    assert store.get_meta("k") == "v" and store.get_meta("missing") is None
    store.check_writable()
    store.close()


def test_seeding_happens_once_when_instances_start_together(store_url):
    frame = pd.DataFrame(
        {
            "transaction_id": np.arange(200),
            "timestamp": pd.date_range("2024-01-01", periods=200, freq="h"),
            "customer_id": np.arange(200) % 7,
            "terminal_id": np.arange(200) % 11,
            "amount": np.linspace(1, 50, 200),
            "is_fraud": np.arange(200) % 13 == 0,
        }
    )
    results: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            store = open_store(store_url)  # creates the schema once
            results.append(seed_history(store, frame, FeatureParams(), only_if_empty=True))
            store.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(results) == [0, 0, 0, 200]
    assert open_store(store_url).count("transactions") == 200


def test_prune_on_both_backends(store_url):
    store = open_store(store_url)
    _score(store, _rows([1, 2], day=0))
    _score(store, _rows([3, 4], day=10))
    assert store.prune(5) == {"transactions": 2, "prediction_log": 0, "label_log": 0}
    assert store.prune(5, logs_keep_days=5)["prediction_log"] == 2
    assert read_prediction_log(store)["transaction_id"].tolist() == [3, 4]


def test_make_migrate_and_unknown_versions(store_url):
    assert upgrade(store_url) == HEAD  # an empty database: created
    assert upgrade(store_url) == HEAD  # again: nothing to do
    store = open_store(store_url)
    store.set_meta("x", "1")
    store._write("test", lambda c: c.execute("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    with pytest.raises(StoreConfigError, match=r"FRAUD_STATE_URL=.*unknown.*make migrate"):
        open_store(store_url)


def test_postgres_start_up_errors_name_the_setting_and_hide_the_password(postgres_url):
    url = postgres_url.replace("postgres@", "postgres:s3cret@").replace(":5432/", ":1/")
    with pytest.raises(StoreConfigError, match="FRAUD_STATE_URL") as info:
        open_store(url)
    assert "s3cret" not in str(info.value) and "***" in str(info.value)
    with pytest.raises(StoreConfigError, match="FRAUD_STATE_URL.*unknown scheme"):
        open_store("redis://127.0.0.1:6379/0")


def test_postgres_store_down_is_a_store_error_and_recovers(postgres_url, postgres_databases):
    import psycopg

    store = open_store(postgres_url)
    _score(store, _rows([1]))
    name = postgres_url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(postgres_databases.url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    with pytest.raises(StateStoreError):
        _score(store, _rows([2]))  # the connection was killed: nothing acknowledged
    _score(store, _rows([2]))  # re-connects by itself
    assert read_prediction_log(store)["transaction_id"].tolist() == [1, 2]


def test_postgres_close_closes_every_threads_connection(postgres_url, postgres_databases):
    import threading

    import psycopg

    store = open_store(postgres_url)
    threads = [threading.Thread(target=_score, args=(store, _rows([10 + i]))) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    name = postgres_url.rsplit("/", 1)[1].split("?")[0]
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    with psycopg.connect(postgres_databases.url, autocommit=True) as admin:
        assert admin.execute(query, (name,)).fetchone()[0] >= 3  # one per thread
        store.close()
        # a closed connection's server process exits a moment after the client closes it
        deadline = time.monotonic() + 5
        while admin.execute(query, (name,)).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert admin.execute(query, (name,)).fetchone()[0] == 0
    assert len(read_prediction_log(store)) == 3  # a closed store reconnects when used again
    store.close()


def test_postgres_seeding_leaves_statistics_so_the_feed_query_uses_its_index(postgres_url):
    """Measured: on a history seeded without planner statistics (this server runs without
    autovacuum) every request's feed query scanned the whole table, 15 ms a request."""
    import psycopg

    from fraud_kedro.store.sql_base import FEED_COLUMNS

    n = 20_000
    frame = pd.DataFrame(
        {
            "transaction_id": np.arange(n),
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="min"),
            "customer_id": np.arange(n) % 97,
            "terminal_id": np.arange(n) % 31,
            "amount": np.linspace(1, 50, n),
            "is_fraud": np.zeros(n, dtype=bool),
        }
    )
    store = open_store(postgres_url)
    assert seed_history(store, frame, FeatureParams()) == n
    store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        last = conn.execute("SELECT MAX(seq) FROM transactions").fetchone()[0]
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                f"EXPLAIN SELECT {FEED_COLUMNS} FROM transactions WHERE seq > %s ORDER BY seq", (last,)
            )
        )
    assert "Index Scan" in plan and "Seq Scan" not in plan, plan
