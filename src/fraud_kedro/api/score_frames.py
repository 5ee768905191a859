"""What a score is made of, without the service: the answer (:class:`ScoreResult`), the frames the
feature function takes, the reasons of ``explain=true`` and the shadow share. No Flask here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fraud_kedro.api.model_loader import LoadedModel
from fraud_kedro.api.scoring_errors import ExplanationUnsupported
from fraud_kedro.api.validation import Transaction
from fraud_kedro.explain import reasons
from fraud_kedro.features import FeatureParams
from fraud_kedro.store import History

_KNUTH = 2_654_435_761
_2_32 = 2**32


@dataclass(frozen=True)
class ScoreResult:
    """What ``POST /score`` answers.

    Attributes:
        model_name: Model name.
        model_version: Model version.
        transaction_ids: Ids, in request order.
        probabilities: Fraud probabilities.
        decisions: Decisions.
        replayed: True when every transaction had already been scored with the same fields and
            the logged results are returned (idempotent retry).
    """

    model_name: str
    model_version: str
    transaction_ids: list[int]
    probabilities: list[float]
    decisions: list[bool]
    replayed: bool = False
    reasons: list[list[dict[str, Any]]] | None = None

    def to_json(self) -> dict[str, Any]:
        """The response body (each result has ``reasons`` when they were asked for)."""
        results = [
            {"transaction_id": i, "fraud_probability": p, "is_fraud_predicted": d}
            for i, p, d in zip(self.transaction_ids, self.probabilities, self.decisions, strict=True)
        ]
        if self.reasons is not None:
            for result, reasons in zip(results, self.reasons, strict=True):
                result["reasons"] = reasons
        return {"model": {"name": self.model_name, "version": self.model_version},
                "results": results}

    def part(self, start: int, end: int, explain: bool) -> ScoreResult:
        """The results ``start:end`` (one request of a merged call), reasons only if asked."""
        return ScoreResult(
            self.model_name,
            self.model_version,
            self.transaction_ids[start:end],
            self.probabilities[start:end],
            self.decisions[start:end],
            self.replayed,
            self.reasons[start:end] if explain and self.reasons is not None else None,
        )


def explain_scores(model: LoadedModel, matrix: np.ndarray, top_k: int = 5) -> list[list[dict]]:
    """Reasons for each row of ``matrix`` (the model's features), from the served model.

    The contributions are to the served probability's log-odds (:mod:`fraud_kedro.explain`).
    Only called for ``explain=true``: the default path pays nothing.
    """
    fraud_model = model.constants.get("fraud_model")
    if fraud_model is None:
        raise ExplanationUnsupported()
    return reasons(fraud_model, list(model.features), matrix, top_k)


def _id_column(past: np.ndarray, new: list[int | str]) -> tuple[Any, Any]:
    """History and new id columns of one type: int64 when every id is an int, else object."""
    if past.dtype == np.int64 and all(type(v) is int for v in new):
        return past, np.fromiter(new, dtype=np.int64, count=len(new))
    # text ids: object Series (pandas 3 would turn an object array into its string dtype)
    return (
        pd.Series(past.astype(object), dtype=object),
        pd.Series(np.array(new, dtype=object), dtype=object),
    )


def build_frames(
    transactions: Sequence[Transaction], history: History, params: FeatureParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The new transactions and their history as :func:`compute_features` inputs.

    Customer and terminal ids are the canonical keys (``17`` and ``"17"`` are the same card),
    int64 when all are integers, as in the training data. The label column is in both frames
    (unknown = NaN), which keeps the concatenation cheap and changes no feature.

    Args:
        transactions: Validated transactions.
        history: Their history rows.
        params: Feature parameters (column names).

    Returns:
        ``(new, history)`` frames.
    """
    c = params.columns
    n = len(transactions)
    past_customers, new_customers = _id_column(
        history.customer_key, [t.customer_key for t in transactions]
    )
    past_terminals, new_terminals = _id_column(
        history.terminal_key, [t.terminal_key for t in transactions]
    )
    new = pd.DataFrame(
        {
            c.transaction_id: np.fromiter((t.transaction_id for t in transactions), np.int64, n),
            c.timestamp: np.fromiter((t.ts_us for t in transactions), np.int64, n).astype(
                "datetime64[us]"
            ),
            c.customer_id: new_customers,
            c.terminal_id: new_terminals,
            c.amount: np.fromiter((t.amount for t in transactions), np.float64, n),
            c.label: np.full(n, np.nan),
        }
    )
    past = pd.DataFrame(
        {
            c.transaction_id: history.transaction_id,
            c.timestamp: history.ts_us.astype("datetime64[us]"),
            c.customer_id: past_customers,
            c.terminal_id: past_terminals,
            c.amount: history.amount,
            c.label: history.is_fraud,
        }
    )
    return new, past


def in_share(transaction_id: int, share: float) -> bool:
    """Deterministic pick of a ``share`` of transactions (the same id always gets the same answer)."""
    if share >= 1.0:
        return True
    if share <= 0.0:
        return False
    return ((transaction_id * _KNUTH) % _2_32) / _2_32 < share
