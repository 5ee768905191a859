"""The operational store's interface: what the scoring service, its workers' history caches,
the CLI and the monitoring/retraining datasets need, whatever the backend (SQLite, PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from fraud_kedro.features import HistoryWindow
from fraud_kedro.store.types import EntityKeys, History, LoggedPrediction, ModelRef, RawLog, Role, ScoredBatch

#: Tables whose rows :meth:`StateStore.count` counts.
TABLES = ("transactions", "prediction_log", "label_log")


@runtime_checkable
class StateStore(Protocol):
    """The operational store: transaction history, prediction log (role champion / shadow),
    label log, model versions and a key/value table.

    Every method raises :class:`~fraud_kedro.store.types.StateStoreError` when the store cannot be
    read or written; a failed write writes nothing.
    """

    #: Where the store is, safe to log (no password).
    description: str

    # -- serving --------------------------------------------------------------------------------
    def history(self, customer_keys: EntityKeys, terminal_keys: EntityKeys, window: HistoryWindow) -> History:
        """Earlier transactions of these customers and terminals within ``window``, each once."""
        ...

    def record_scores(
        self, batch: ScoredBatch, model: ModelRef, scored_at: datetime, role: Role = "champion"
    ) -> None:
        """Log a batch's predictions with their ``role``. The champion's (the default) also add the
        transactions to the history, atomically, with each score's reasons as JSON when given
        (``explain=true``); the shadow model's leave the history alone.

        Raises:
            DuplicateTransactionError: A champion id is already in the history (nothing written).
            StateStoreError: The store cannot be written (nothing written).
        """
        ...

    def logged_predictions(self, ids: Sequence[int]) -> dict[int, LoggedPrediction]:
        """The logged champion predictions of these ids (the latest per id)."""
        ...

    def record_labels(self, labels: Sequence[Any], received_at: datetime) -> int:
        """Log labels and attach them to the history; returns how many ids were known."""
        ...

    def check_writable(self) -> None:
        """Raise ``StateStoreError`` unless the store can take new data now."""
        ...

    def get_meta(self, key: str) -> str | None:
        """A value of the key/value table, or None."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the key/value table."""
        ...

    # -- change feed (the workers' history caches) ---------------------------------------------
    def history_snapshot(self, keep_days: int) -> tuple[list[tuple], int, int, int]:
        """Rows of the last ``keep_days`` days before the latest one, in commit (``seq``) order.

        Returns:
            ``(rows, horizon_us, last_seq, last_label_id)``; rows are ``(seq, transaction_id,
            ts_us, customer_id, terminal_id, amount, is_fraud)``.
        """
        ...

    def changes_since(self, seq: int, label_id: int) -> tuple[list[tuple], list[tuple]]:
        """History rows committed after ``seq`` and labels after ``label_id``.

        Returns:
            ``(rows, labels)``; labels are ``(log_id, seq of the labelled transaction, is_fraud)``.
        """
        ...

    # -- seeding, maintenance -------------------------------------------------------------------
    def is_seeded(self) -> bool:
        """Whether the history was seeded or already holds transactions."""
        ...

    def insert_seed(self, rows: list[tuple], only_if_empty: bool = False) -> int:
        """Insert ``(transaction_id, ts_us, customer, terminal, amount, is_fraud)`` history rows
        (known ids skipped) and mark the store seeded; returns how many were inserted.

        With ``only_if_empty`` nothing happens on a seeded or non-empty store (decided under the
        store's write lock, so that instances starting together seed once)."""
        ...

    def prune(self, keep_days: int, logs_keep_days: int | None = None) -> dict[str, int]:
        """Delete history rows older than ``keep_days`` before the latest transaction (and log
        rows older than ``logs_keep_days`` when given); returns the rows deleted per table."""
        ...

    def count(self, table: str) -> int:
        """Number of rows of one of :data:`TABLES`."""
        ...

    # -- readers (monitoring, retraining) -------------------------------------------------------
    def raw_prediction_log(self, role: Role = "champion") -> RawLog:
        """The prediction log of one role as stored, in log order."""
        ...

    def served_rows(self) -> list[tuple]:
        """``(transaction_id, timestamp, customer_key, terminal_key, amount)`` of every scored
        transaction (champion log order; the training data of retraining on served traffic)."""
        ...

    def label_rows(self) -> list[tuple]:
        """``(transaction_id, is_fraud, received_at)`` of every label, in arrival order."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
