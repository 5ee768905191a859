"""Value types and errors of the operational store (shared by every backend)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

Role = Literal["champion", "shadow"]
ROLES: tuple[Role, ...] = ("champion", "shadow")

#: Customer or terminal ids of a history look-up, as the caller has them (repeats allowed).
EntityKeys = Iterable[int | str]


class StateStoreError(RuntimeError):
    """The store cannot be read or written (answered 503; the request is not acknowledged)."""


class StoreConfigError(StateStoreError):
    """The store setting is wrong (bad URL, unknown schema version): start-up must stop."""


class DuplicateTransactionError(Exception):
    """Some transaction ids of a request are already in the history."""

    def __init__(self, ids: Sequence[int]) -> None:
        super().__init__(f"transaction ids already known: {list(ids)[:20]}")
        self.ids = list(ids)


class History(NamedTuple):
    """History rows as columns (``is_fraud`` is NaN where no label is known)."""

    transaction_id: np.ndarray
    ts_us: np.ndarray
    customer_key: np.ndarray  # int64, or object when some ids are text
    terminal_key: np.ndarray
    amount: np.ndarray
    is_fraud: np.ndarray

    def __len__(self) -> int:  # type: ignore[override]
        """Number of rows."""
        return len(self.transaction_id)


@dataclass(frozen=True)
class ModelRef:
    """The model a prediction came from, with its ordered feature list."""

    name: str
    version: str
    uri: str
    features: tuple[str, ...]
    feature_dtypes: tuple[str, ...]


@dataclass(frozen=True)
class ScoredBatch:
    """Scored transactions, as :meth:`~fraud_kedro.store.interface.StateStore.record_scores` logs
    them.

    ``rows``: the validated transactions (:class:`~fraud_kedro.api.validation.Transaction`);
    ``features``: their features, shape ``(n, len(model.features))``; ``probabilities``: fraud
    probabilities; ``decisions``: decisions at the model's threshold; ``reasons``: each score's
    reasons (``explain=true``), or None (logged as NULL).
    """

    rows: Sequence[Any]
    features: np.ndarray
    probabilities: np.ndarray
    decisions: np.ndarray
    reasons: Sequence[Any] | None = None


@dataclass(frozen=True)
class LoggedPrediction:
    """A prediction already in the log (for idempotent replays)."""

    transaction_id: int
    timestamp: str
    customer_id: Any
    terminal_id: Any
    amount: float
    fraud_probability: float
    is_fraud_predicted: bool
    model_name: str
    model_version: str


@dataclass(frozen=True)
class RawLog:
    """A prediction log as stored: the rows and the feature lists of the model versions.

    ``rows`` are ``(transaction_id, timestamp, customer_id, terminal_id, features blob,
    fraud_probability, is_fraud_predicted, model_version, scored_at, model_name, reasons)`` in log
    order (reasons: the score's reasons as JSON text, or None);
    ``versions`` maps ``(model_name, model_version)`` to ``(features, feature_dtypes)``.
    """

    rows: list[tuple]
    versions: dict[tuple[str, str], tuple[list[str], list[str]]]


def empty_history() -> History:
    """A history without rows."""
    empty = np.array([], dtype=np.int64)
    floats = np.array([], dtype=np.float64)
    return History(empty, empty, empty, empty, floats, floats)


def keys_array(values: Sequence[Any]) -> np.ndarray:
    """Ids as int64 when they are all ints (the common case), else an object array."""
    if all(type(v) is int for v in values):
        return np.fromiter(values, dtype=np.int64, count=len(values))
    return np.array(values, dtype=object)


def history_from_rows(rows: list[tuple], dedupe: bool) -> History:
    """Columns from ``(transaction_id, ts_us, customer, terminal, amount, is_fraud)`` rows.

    Args:
        rows: The rows.
        dedupe: Drop repeated transaction ids (keeping the first).

    Returns:
        The history.
    """
    n = len(rows)
    if n == 0:
        return empty_history()
    ids, ts, customers, terminals, amounts, labels = zip(*rows, strict=True)
    history = History(
        np.fromiter(ids, dtype=np.int64, count=n),
        np.fromiter(ts, dtype=np.int64, count=n),
        keys_array(customers),
        keys_array(terminals),
        np.fromiter(amounts, dtype=np.float64, count=n),
        np.array(labels, dtype=np.float64),  # None -> NaN
    )
    if dedupe:
        _, first = np.unique(history.transaction_id, return_index=True)
        if len(first) < n:
            first.sort()
            history = History(*(col[first] for col in history))
    return history
