"""A per-worker, columnar copy of the recent transaction history.

Reading a card's and a terminal's history from the store costs about 3 microseconds a row in Python
(a batch of 1,000 transactions needs tens of thousands of rows: most of its time). Each worker
therefore keeps the recent history in numpy arrays and follows the state store's change feed: before
every look-up it reads the rows added since its last look (by any worker, in commit order: the
``seq`` column) and the labels received since (``label_log``). The state store stays the source of
truth; this is a read-through view that any store with such a feed can offer.

The cache holds every row at or after ``horizon_us`` (rows are dropped oldest first when it exceeds
``max_rows``). A request whose windows reach before the horizon (a backfill of old transactions) is
answered from the store directly.
"""

from __future__ import annotations

import logging
import threading
from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np

from fraud_kedro.features import HistoryWindow
from fraud_kedro.store import EntityKeys, History, StateStore

logger = logging.getLogger(__name__)


class HistoryCache:
    """Columnar history of one worker, kept current from the store's change feed.

    Args:
        store: The state store (source of truth and change feed).
        keep_days: Days of history loaded at start (the model's ``history_days`` and a margin).
        max_rows: Row budget; beyond it the oldest rows are dropped and the horizon moves.
    """

    def __init__(self, store: StateStore, keep_days: int, max_rows: int = 2_000_000) -> None:
        self.store = store
        self.keep_days = keep_days
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._loaded = False
        self.horizon_us = 0
        self._last_seq = 0
        self._last_label = 0
        self._n = 0
        self._cols: dict[str, np.ndarray] = {}
        self._by_customer: dict[Any, array] = {}
        self._by_terminal: dict[Any, array] = {}
        self.fallbacks = 0

    def __len__(self) -> int:
        """Rows held."""
        return self._n

    # -- loading and following the feed ----------------------------------------------------------

    def _load(self) -> None:
        rows, horizon, last_seq, last_label = self.store.history_snapshot(self.keep_days)
        self._reset_columns(max(len(rows) * 2, 1024))
        self._append(rows)
        self.horizon_us, self._last_seq, self._last_label = horizon, last_seq, last_label
        self._loaded = True
        logger.info("history cache: %d rows loaded (%d days)", self._n, self.keep_days)

    def _reset_columns(self, capacity: int) -> None:
        self._cols = {
            "seq": np.empty(capacity, dtype=np.int64),
            "transaction_id": np.empty(capacity, dtype=np.int64),
            "ts_us": np.empty(capacity, dtype=np.int64),
            "customer": np.empty(capacity, dtype=np.int64),
            "terminal": np.empty(capacity, dtype=np.int64),
            "amount": np.empty(capacity, dtype=np.float64),
            "is_fraud": np.empty(capacity, dtype=np.float64),
        }
        self._n = 0
        self._by_customer = {}
        self._by_terminal = {}

    def _append(self, rows: list[tuple]) -> None:
        if not rows:
            return
        n, start = len(rows), self._n
        if start + n > len(self._cols["seq"]):
            capacity = max(2 * len(self._cols["seq"]), start + n)
            for name, col in self._cols.items():
                grown = np.empty(capacity, dtype=col.dtype)
                grown[:start] = col[:start]
                self._cols[name] = grown
        seq, ids, ts, customers, terminals, amounts, labels = zip(*rows, strict=True)
        end = start + n
        self._cols["seq"][start:end] = seq
        self._cols["transaction_id"][start:end] = ids
        self._cols["ts_us"][start:end] = ts
        self._cols["amount"][start:end] = amounts
        self._cols["is_fraud"][start:end] = np.array(labels, dtype=np.float64)
        for name, keys, index in (
            ("customer", customers, self._by_customer),
            ("terminal", terminals, self._by_terminal),
        ):
            col = self._cols[name]
            if col.dtype != object and not all(type(k) is int for k in keys):
                col = self._cols[name] = col.astype(object)  # text ids: rare, kept as objects
            col[start:end] = keys
            for position, key in enumerate(keys, start):
                positions = index.get(key)
                if positions is None:
                    index[key] = array("q", (position,))
                else:
                    positions.append(position)
        self._n = end
        self._last_seq = seq[-1]

    def _apply_labels(self, labels: list[tuple]) -> None:
        if not labels:
            return
        seq = self._cols["seq"][: self._n]
        for log_id, row_seq, label in labels:
            position = int(np.searchsorted(seq, row_seq))
            if position < self._n and seq[position] == row_seq:
                self._cols["is_fraud"][position] = float(label)
            self._last_label = log_id

    def _prune(self) -> None:
        """Keep the newest ``max_rows // 2`` rows (by time); the horizon moves forward."""
        ts = self._cols["ts_us"][: self._n]
        keep_from = int(np.partition(ts, self._n - self.max_rows // 2)[self._n - self.max_rows // 2])
        keep = np.flatnonzero(ts >= keep_from)
        kept = {name: col[keep] for name, col in self._cols.items()}
        self._reset_columns(max(2 * len(keep), 1024))
        for name, values in kept.items():
            if values.dtype == object:
                self._cols[name] = self._cols[name].astype(object)
            self._cols[name][: len(keep)] = values
        self._n = len(keep)
        for name, index in (("customer", self._by_customer), ("terminal", self._by_terminal)):
            for position, key in enumerate(self._cols[name][: self._n].tolist()):
                positions = index.get(key)
                if positions is None:
                    index[key] = array("q", (position,))
                else:
                    positions.append(position)
        self.horizon_us = max(self.horizon_us, keep_from)
        logger.info("history cache pruned to %d rows", self._n)

    def sync(self) -> None:
        """Catch up with the store (rows and labels written by any worker since the last look).

        Raises:
            StateStoreError: On a database error.
        """
        if not self._loaded:
            self._load()
            return
        rows, labels = self.store.changes_since(self._last_seq, self._last_label)
        self._append(rows)
        self._apply_labels(labels)
        if self._n > self.max_rows:
            self._prune()

    # -- look-ups --------------------------------------------------------------------------------

    def _positions(self, index: dict[Any, array], keys: Iterable[Any], lo: int, hi: int) -> Any:
        found = [index[k] for k in dict.fromkeys(keys) if k in index]
        if not found:
            return np.empty(0, dtype=np.int64)
        positions = np.concatenate([np.frombuffer(p, dtype=np.int64) for p in found])
        ts = self._cols["ts_us"][positions]
        return positions[(ts >= lo) & (ts < hi)]

    def history(self, customer_keys: EntityKeys, terminal_keys: EntityKeys, window: HistoryWindow) -> History:
        """Earlier transactions of these customers and terminals within ``window``.

        Same answer as :meth:`StateStore.history` (a test checks it), from memory.

        Raises:
            StateStoreError: On a database error while catching up.
        """
        customer_keys, terminal_keys = list(customer_keys), list(terminal_keys)
        with self._lock:
            self.sync()
            if min(window.customer_from, window.terminal_from) < self.horizon_us:
                self.fallbacks += 1
                return self.store.history(customer_keys, terminal_keys, window)
            by_customer = self._positions(
                self._by_customer, customer_keys, window.customer_from, window.customer_to
            )
            by_terminal = self._positions(
                self._by_terminal, terminal_keys, window.terminal_from, window.terminal_to
            )
            if len(by_customer) + len(by_terminal) > self._n // 32:  # big batches: no sort
                mask = np.zeros(self._n, dtype=bool)
                mask[by_customer] = True
                mask[by_terminal] = True
                positions = np.flatnonzero(mask)
            else:
                positions = np.union1d(by_customer, by_terminal)
            cols = self._cols
            return History(
                cols["transaction_id"][positions],
                cols["ts_us"][positions],
                cols["customer"][positions],
                cols["terminal"][positions],
                cols["amount"][positions],
                cols["is_fraud"][positions],
            )
