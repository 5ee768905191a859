"""Fraud-detection metrics, with the contract's names: one definition each, for evaluation and monitoring.

Undefined cases (docs/contract.md, "Metrics"): precision with no predicted positive is 0 (no alert
caught no fraud; scikit-learn's ``zero_division=0``), recall and F1 with no positive and no
predicted positive are NaN (nothing to find), ROC AUC needs both classes and average precision a
positive, else NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from fraud_kedro.contract import ACCURACY, AVERAGE_PRECISION, F1, PRECISION, RECALL, ROC_AUC


def card_precision_at_k(
    scored: pd.DataFrame, k: int, customer: str, timestamp: str, label: str, score: str
) -> float:
    """Card Precision@k averaged over test days (docs/contract.md, "Metrics").

    For each day: drop cards already detected (a fraudulent card in an earlier day's top k), take
    each card's highest score and label that day, rank cards by score and count the fraudulent
    share of the top k.
    """
    day = scored[timestamp].dt.normalize()
    detected: set = set()
    precisions = []
    for _, rows in scored.groupby(day, sort=True):
        cards = rows.groupby(customer).agg(score=(score, "max"), label=(label, "max"))
        cards = cards.loc[~cards.index.isin(detected)]
        top = cards.sort_values("score", ascending=False, kind="stable").head(k)
        precisions.append(float(top["label"].sum()) / k)
        detected |= set(top.index[top["label"] == 1])
    return float(np.mean(precisions)) if precisions else float("nan")


def ranking_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """ROC AUC (NaN without both classes) and average precision (NaN without a positive)."""
    y = np.asarray(y).astype(np.int64)
    n_pos = int(y.sum())
    both_classes = 0 < n_pos < len(y)
    return {
        ROC_AUC: float(roc_auc_score(y, score)) if both_classes else float("nan"),
        AVERAGE_PRECISION: float(average_precision_score(y, score)) if n_pos else float("nan"),
    }


def threshold_metrics(y: np.ndarray, decision: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of 0/1 decisions (the undefined cases: module docstring)."""
    y = np.asarray(y).astype(np.int64)
    decision = np.asarray(decision).astype(np.int64)
    tp = int(((decision == 1) & (y == 1)).sum())
    n_pred, n_pos = int(decision.sum()), int(y.sum())
    return {
        PRECISION: tp / n_pred if n_pred else 0.0,
        RECALL: tp / n_pos if n_pos else float("nan"),
        F1: 2 * tp / (n_pred + n_pos) if (n_pred + n_pos) else float("nan"),
    }


def classification_metrics(
    y: np.ndarray, proba: np.ndarray, threshold: float, prefix: str = "test_"
) -> dict[str, float]:
    """ROC AUC, average precision, and accuracy/precision/recall/F1 at the threshold.

    Accuracy is reported because requirement documents name it; at a 0.9% fraud rate it is
    ~0.99 for a model that flags nothing, so it is never used to choose or gate a model.
    """
    y = np.asarray(y).astype(np.int64)
    decision = np.asarray(proba) >= threshold
    accuracy = float(np.mean(decision.astype(np.int64) == y)) if len(y) else float("nan")
    metrics = {**ranking_metrics(y, proba), ACCURACY: accuracy, **threshold_metrics(y, decision)}
    return {f"{prefix}{name}": value for name, value in metrics.items()}


def expected_cost(y: np.ndarray, decision: np.ndarray, cost_missed: float, cost_alert: float) -> float:
    """Cost of missed frauds plus alert reviews."""
    y, decision = np.asarray(y), np.asarray(decision)
    return float(cost_missed * np.sum((y == 1) & ~decision) + cost_alert * np.sum(decision))
