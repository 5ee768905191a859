"""The workers' in-memory history answers exactly what the state store answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_config
from test_scoring import as_body

from fraud_kedro.api import create_app, read_prediction_log
from fraud_kedro.api.history_cache import HistoryCache
from fraud_kedro.api.validation import Label, validate_score_request
from fraud_kedro.features import FeatureParams
from fraud_kedro.store import HistoryWindow, ModelRef, ScoredBatch, open_store

PARAMS = FeatureParams()
MODEL = ModelRef("m", "1", "models:/m/1", ("amount",), ("float64",))


def _rows(history) -> set[tuple]:
    labels = [None if np.isnan(v) else v for v in history.is_fraud]
    return set(
        zip(
            history.transaction_id.tolist(), history.ts_us.tolist(),
            history.customer_key.tolist(), history.terminal_key.tolist(),
            history.amount.tolist(), labels, strict=True,
        )
    )


def _score(store, bodies) -> None:
    txs, _ = validate_score_request({"transactions": bodies}, 10_000, 1e9)
    n = len(txs)
    batch = ScoredBatch(txs, np.zeros((n, 1)), np.zeros(n), np.zeros(n, bool))
    store.record_scores(batch, MODEL, pd.Timestamp("2020-01-01").to_pydatetime())


def _same_as_store(cache, store, held_out, rng, k=40) -> None:
    for _ in range(k):
        rows = held_out.sample(3, random_state=int(rng.integers(1 << 30)))
        ts = [int(pd.Timestamp(t).value // 1000) for t in rows["timestamp"]]
        window = HistoryWindow.for_batch(ts, PARAMS)
        customers = rows["customer_id"].astype(int).tolist() + ["card-A"]
        terminals = rows["terminal_id"].astype(int).tolist() + ["shop 7"]
        got = cache.history(customers, terminals, window)
        want = store.history(customers, terminals, window)
        assert _rows(got) == _rows(want)
        assert len(got) == len(want)


def test_cache_equals_store_while_others_write(state_db, held_out):
    rng = np.random.default_rng(0)
    store, other = open_store(state_db), open_store(state_db)  # "other" is another worker
    cache = HistoryCache(store, PARAMS.history_days + 1)
    _same_as_store(cache, store, held_out, rng)
    assert cache.fallbacks == 0 and len(cache) > 1000
    bodies = [as_body(r) for r in held_out.iloc[:50].itertuples()]
    bodies += [{**bodies[0], "transaction_id": 4_000_000_000 + i, "customer_id": "card-A",
                "terminal_id": "shop 7"} for i in range(3)]
    _score(other, bodies)
    other.record_labels([Label(bodies[0]["transaction_id"], 1), Label(4_000_000_001, 1),
                         Label(123, 0)], pd.Timestamp("2020-01-01").to_pydatetime())
    _same_as_store(cache, store, held_out, rng)
    hit = cache.history(["card-A"], ["shop 7"], HistoryWindow.for_batch(
        [int(pd.Timestamp(held_out["timestamp"].iloc[0]).value // 1000) + 1], PARAMS))
    assert sorted(hit.transaction_id.tolist()) == [4_000_000_000 + i for i in range(3)]
    assert hit.customer_key.dtype == object


def test_requests_before_the_horizon_read_the_store(state_db, held_out):
    store = open_store(state_db)
    cache = HistoryCache(store, keep_days=3)
    old = int((pd.Timestamp(held_out["timestamp"].iloc[0]) - pd.Timedelta(days=20)).value // 1000)
    window = HistoryWindow.for_batch([old], PARAMS)
    row = held_out.iloc[0]
    got = cache.history([int(row.customer_id)], [int(row.terminal_id)], window)
    assert cache.fallbacks == 1
    assert _rows(got) == _rows(store.history([int(row.customer_id)], [int(row.terminal_id)], window))


def test_pruning_keeps_answers_exact(state_db, held_out):
    store = open_store(state_db)
    cache = HistoryCache(store, PARAMS.history_days + 1, max_rows=5000)
    cache.sync()
    assert len(cache) > 5000
    _score(store, [as_body(r) for r in held_out.iloc[:10].itertuples()])
    cache.sync()  # over budget: pruned to the newest half
    assert len(cache) <= 5000
    rng = np.random.default_rng(1)
    _same_as_store(cache, store, held_out, rng, k=20)  # exact, through the store when too old
    assert cache.fallbacks > 0


def test_a_worker_sees_what_another_worker_scored(registry, state_db, held_out):
    first = create_app(make_config(registry, state_db)).test_client()
    second = create_app(make_config(registry, state_db)).test_client()
    row = held_out.iloc[0]
    base = {**as_body(row), "customer_id": "new-card"}
    assert first.post("/score", json=base).status_code == 200
    later = {**base, "transaction_id": base["transaction_id"] + 10**9,
             "timestamp": (row.timestamp + pd.Timedelta(minutes=5)).isoformat()}
    assert second.post("/score", json=later).status_code == 200
    log = read_prediction_log(state_db)
    assert log["customer_nb_tx_1d"].tolist() == [1, 2]


@pytest.mark.parametrize("rows", [0, 10])
def test_cache_can_be_disabled_or_tiny(registry, state_db, held_out, rows):
    client = create_app(make_config(registry, state_db, history_cache_rows=rows)).test_client()
    assert client.post("/score", json=as_body(held_out.iloc[0])).status_code == 200
