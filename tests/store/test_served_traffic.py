"""Retraining on served traffic: the served transactions with settled labels join the history."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pandas as pd
import pytest
from test_store_sqlite import _rows, _score

from fraud_kedro.io.served_traffic import ServedTransactionsDataset
from fraud_kedro.pipelines.data_processing.nodes import add_served_transactions
from fraud_kedro.store import open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_url")


def test_served_transactions_with_settled_labels_become_training_rows(store_url):
    store = open_store(store_url)
    _score(store, _rows([1, 2, 3], day=0))  # old enough: labels had time to arrive
    _score(store, _rows([4], day=9))  # too recent (delay 7 days): left out
    store.record_labels([SimpleNamespace(transaction_id=2, is_fraud=1)], datetime(2024, 3, 5))
    store.close()
    assert ServedTransactionsDataset(url=store_url).load().empty  # disabled: nothing read

    served = ServedTransactionsDataset(url=store_url, enabled=True, label_delay_days=7).load()
    assert served["transaction_id"].tolist() == [1, 2, 3]
    assert served["is_fraud"].tolist() == [0, 1, 0]  # no report after the delay = legitimate
    strict = ServedTransactionsDataset(url=store_url, enabled="true", assume_legit_after_delay="false").load()
    assert strict["transaction_id"].tolist() == [2]

    history = pd.DataFrame(
        {
            "transaction_id": [1, 100],
            "timestamp": pd.to_datetime(["2024-03-01 10:00:01", "2024-02-01 00:00:00"]),
            "customer_id": [1, 5],
            "terminal_id": [1, 5],
            "amount": [1.0, 3.0],
            "is_fraud": [0, 1],
            "fraud_scenario": [0, 1],
        }
    )
    combined = add_served_transactions(history, served)
    assert sorted(combined["transaction_id"]) == [1, 2, 3, 100]  # id 1 kept once
    assert list(combined.columns) == list(history.columns)
    assert add_served_transactions(history, served.iloc[0:0]) is history
