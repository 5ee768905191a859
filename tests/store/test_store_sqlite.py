"""The store package on SQLite: the Protocol, the one prediction log, URLs, pruning, old files."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from types import SimpleNamespace

import numpy as np
import pytest

from fraud_kedro.store import (
    ModelRef,
    ScoredBatch,
    StateStore,
    StoreConfigError,
    mask_url,
    open_store,
    read_label_log,
    read_prediction_log,
)
from fraud_kedro.store.connect import backend_of, state_url_from_env

MODEL = ModelRef("fraud_detector", "1", "models:/fraud_detector/1", ("amount", "hour"), ("float64", "int64"))
DAY_US = 86_400 * 1_000_000


def _rows(ids: list[int], day: int = 0) -> list[SimpleNamespace]:
    out = []
    for i in ids:
        ts = datetime(2024, 3, 1 + day, 10, 0, i % 60)
        out.append(SimpleNamespace(
            transaction_id=i, timestamp=ts,
            ts_us=int((ts - datetime(1970, 1, 1)).total_seconds() * 1_000_000),
            customer_id=i % 3, terminal_id=i % 5, customer_key=i % 3, terminal_key=i % 5,
            amount=float(i),
        ))  # fmt: skip
    return out


def _score(store: StateStore, rows: list, shadow: bool = False) -> None:
    x = np.array([[r.amount, 10] for r in rows], dtype=np.float64)
    p = np.full(len(rows), 0.25)
    role = "shadow" if shadow else "champion"
    store.record_scores(ScoredBatch(rows, x, p, p > 0.5), MODEL, datetime(2024, 3, 20), role=role)


def test_sqlite_store_is_the_protocol_and_keeps_one_log_with_roles(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    assert isinstance(store, StateStore)
    _score(store, _rows([1, 2, 3]))
    _score(store, _rows([1, 2]), shadow=True)
    assert store.count("prediction_log") == 5
    champion, shadow = read_prediction_log(store), read_prediction_log(store, shadow=True)
    assert champion["transaction_id"].tolist() == [1, 2, 3] and len(shadow) == 2
    assert champion["hour"].dtype == np.int64
    assert set(store.logged_predictions([1, 2, 3])) == {1, 2, 3}  # champion rows only
    store.close()


def test_a_pre_role_file_is_folded_into_one_log(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    cols = (
        "log_id INTEGER PRIMARY KEY AUTOINCREMENT, transaction_id INTEGER NOT NULL, timestamp TEXT "
        "NOT NULL, customer_id, terminal_id, amount REAL NOT NULL, features BLOB NOT NULL, "
        "fraud_probability REAL NOT NULL, is_fraud_predicted INTEGER NOT NULL, model_name TEXT NOT "
        "NULL, model_version TEXT NOT NULL, scored_at TEXT NOT NULL"
    )
    conn.execute(f"CREATE TABLE prediction_log ({cols})")
    conn.execute(f"CREATE TABLE shadow_prediction_log ({cols})")
    row = (7, "2024-03-01T10:00:00.000000", 1, 2, 5.0, np.zeros(2).tobytes(), 0.1, 0, "m", "1",
           "2024-03-01T10:00:00.000000")  # fmt: skip
    conn.execute("INSERT INTO prediction_log VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    conn.execute("INSERT INTO shadow_prediction_log VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    conn.commit()
    conn.close()
    store = open_store(db)
    assert store.count("prediction_log") == 2
    assert len(read_prediction_log(db)) == 1 and len(read_prediction_log(db, shadow=True)) == 1
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert "shadow_prediction_log" not in tables
    columns = {r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(prediction_log)")}
    assert {"role", "reasons"} <= columns  # the later revisions' columns too


def test_prune_deletes_old_history_and_only_on_request_old_logs(tmp_path):
    store = open_store(tmp_path / "state.db")
    _score(store, _rows([1, 2], day=0))
    _score(store, _rows([3, 4], day=10))
    store.record_labels([SimpleNamespace(transaction_id=1, is_fraud=1)], datetime(2024, 3, 2))
    assert store.prune(5) == {"transactions": 2, "prediction_log": 0, "label_log": 0}
    assert store.prune(5, logs_keep_days=5) == {"transactions": 0, "prediction_log": 2, "label_log": 1}
    assert read_prediction_log(store)["transaction_id"].tolist() == [3, 4]
    assert read_label_log(store).empty


def test_store_urls_and_their_errors(tmp_path):
    assert backend_of("sqlite:///data/x.db") == ("sqlite", "data/x.db")
    assert backend_of("sqlite:////abs/x.db") == ("sqlite", "/abs/x.db")
    assert backend_of("data/x.db") == ("sqlite", "data/x.db")
    assert backend_of("postgres://u@h:5432/d")[0] == "postgresql"
    with pytest.raises(StoreConfigError, match="FRAUD_STATE_URL.*unknown scheme") as info:
        open_store("mysql://root:hunter2@db/x")
    assert "hunter2" not in str(info.value)
    assert mask_url("postgresql://u:p%40ss@h/d") == "postgresql://u:***@h/d"
    assert mask_url("postgresql://h/d?password=x&a=1") == "postgresql://h/d?password=***&a=1"
    assert state_url_from_env({"FRAUD_STATE_DB": "a.db"}) == "a.db"
    assert state_url_from_env({"FRAUD_STATE_DB": "a.db", "FRAUD_STATE_URL": "sqlite:///b"}) == "sqlite:///b"
