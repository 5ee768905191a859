"""Fraud metrics with the contract's definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_kedro.metrics import card_precision_at_k, classification_metrics, expected_cost


def scored(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "is_fraud", "score"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    return df


def cpk(df: pd.DataFrame, k: int) -> float:
    return card_precision_at_k(df, k, "customer_id", "timestamp", "is_fraud", "score")


def test_card_precision_at_k_hand_example() -> None:
    df = scored(
        [
            # day 1: card A's best score 0.9 and its label is fraud (max over its rows)
            ("A", "2018-06-01 09:00", 0, 0.2),
            ("A", "2018-06-01 10:00", 1, 0.9),
            ("B", "2018-06-01 11:00", 0, 0.8),
            ("C", "2018-06-01 12:00", 1, 0.3),
            # day 2: A was detected on day 1 and is dropped although it scores highest
            ("A", "2018-06-02 09:00", 0, 0.95),
            ("B", "2018-06-02 10:00", 0, 0.5),
            ("C", "2018-06-02 11:00", 1, 0.7),
            ("D", "2018-06-02 12:00", 1, 0.6),
        ]
    )
    # day 1: top 2 = A (fraud), B (legit) -> 1/2; day 2 (without A): C, D -> 2/2
    assert cpk(df, 2) == pytest.approx(0.75)
    # k = 4, more than the cards: day 1 detects A and C; day 2 ranks D, B -> (2/4 + 1/4) / 2
    assert cpk(df, 4) == pytest.approx(0.375)


def test_card_precision_counts_a_card_once_per_day() -> None:
    df = scored(
        [
            ("A", "2018-06-01 09:00", 1, 0.9),
            ("A", "2018-06-01 10:00", 1, 0.8),
            ("B", "2018-06-01 11:00", 0, 0.1),
        ]
    )
    assert cpk(df, 2) == pytest.approx(0.5)


def test_card_precision_of_a_missed_card_is_not_dropped() -> None:
    # C is fraudulent on day 1 but not in the top 1: it stays a candidate on day 2
    df = scored(
        [
            ("A", "2018-06-01 09:00", 0, 0.9),
            ("C", "2018-06-01 10:00", 1, 0.1),
            ("C", "2018-06-02 10:00", 1, 0.8),
            ("B", "2018-06-02 11:00", 0, 0.2),
        ]
    )
    assert cpk(df, 1) == pytest.approx(0.5)


def test_card_precision_of_nothing_is_nan() -> None:
    assert np.isnan(cpk(scored([]).astype({"timestamp": "datetime64[ns]"}), 10))


def test_classification_metrics_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 0])
    proba = np.array([0.1, 0.6, 0.7, 0.4, 0.2])
    m = classification_metrics(y, proba, threshold=0.5)
    assert set(m) == {"test_roc_auc", "test_average_precision", "test_accuracy", "test_precision",
                      "test_recall", "test_f1"}
    assert m["test_roc_auc"] == pytest.approx(5 / 6)
    assert m["test_precision"] == pytest.approx(0.5)
    assert m["test_recall"] == pytest.approx(0.5)
    assert m["test_f1"] == pytest.approx(0.5)
    # AP: ranks 0.7 (fraud) 0.6 (legit) 0.4 (fraud): (1/1 + 2/3) / 2
    assert m["test_average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    # the threshold is inclusive
    assert classification_metrics(y, proba, 0.7, prefix="")["precision"] == 1.0


def test_classification_metrics_with_one_class_are_nan_not_an_error() -> None:
    m = classification_metrics(np.zeros(4, int), np.array([0.1, 0.2, 0.3, 0.9]), 0.5)
    assert np.isnan(m["test_roc_auc"]) and np.isnan(m["test_average_precision"])
    assert m["test_precision"] == 0.0


def test_expected_cost() -> None:
    y = np.array([1, 1, 0, 0])
    decision = np.array([True, False, True, False])
    assert expected_cost(y, decision, cost_missed=200.0, cost_alert=5.0) == 200.0 + 2 * 5.0
