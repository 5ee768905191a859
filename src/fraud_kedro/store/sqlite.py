"""The serving state store: transaction history, prediction log and label log.

All gunicorn workers share one embedded SQLite database in WAL mode (one writer at a time, readers
never blocked). The service talks to it through :class:`StateStore` only, so a Redis or PostgreSQL
implementation could replace :class:`SqliteStateStore` without touching the endpoints.

Tables (documented in ``docs/serving.md``; the monitoring pipeline reads them through
:func:`read_prediction_log` and :func:`read_label_log`):

* ``transactions``: the history the online features are computed from (seeded from the training
  data, then every scored transaction; ``is_fraud`` is filled by ``POST /feedback``).
* ``prediction_log`` / ``shadow_prediction_log``: one row per scored transaction (champion /
  shadow challenger), features stored as a float64 blob in the order of ``model_versions``.
* ``label_log``: every label received.
* ``model_versions``: the feature list of each model version seen; ``meta``: key/value settings.
"""

from __future__ import annotations

import abc
import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from fraud_kedro.features import FeatureParams

logger = logging.getLogger(__name__)

_US_PER_S = 1_000_000
_IN_CHUNK = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- customer_id/terminal_id: canonical ids (validation.canonical_id), ints or text; no type
-- affinity, so that 17 stays an integer (and "A17" text)
-- seq: commit order (writers are serialised), which the workers' history caches follow
CREATE TABLE IF NOT EXISTS transactions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL UNIQUE,
    ts_us INTEGER NOT NULL,
    customer_id NOT NULL,
    terminal_id NOT NULL,
    amount REAL NOT NULL,
    is_fraud INTEGER,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_transactions_customer ON transactions (customer_id, ts_us);
CREATE INDEX IF NOT EXISTS ix_transactions_terminal ON transactions (terminal_id, ts_us);
CREATE TABLE IF NOT EXISTS model_versions (
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_uri TEXT NOT NULL,
    features TEXT NOT NULL,
    feature_dtypes TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (model_name, model_version)
);
-- the logs keep customer_id/terminal_id as sent (no type affinity: 17 stays 17, "17" stays "17")
CREATE TABLE IF NOT EXISTS prediction_log (
    log_id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    customer_id,
    terminal_id,
    amount REAL NOT NULL,
    features BLOB NOT NULL,
    fraud_probability REAL NOT NULL,
    is_fraud_predicted INTEGER NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    scored_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_prediction_log_tx ON prediction_log (transaction_id);
CREATE TABLE IF NOT EXISTS shadow_prediction_log (
    log_id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    customer_id,
    terminal_id,
    amount REAL NOT NULL,
    features BLOB NOT NULL,
    fraud_probability REAL NOT NULL,
    is_fraud_predicted INTEGER NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    scored_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS label_log (
    log_id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL,
    is_fraud INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
"""
_LOG_TABLES = {False: "prediction_log", True: "shadow_prediction_log"}
_FEED_COLUMNS = "seq, transaction_id, ts_us, customer_id, terminal_id, amount, is_fraud"


class StateStoreError(RuntimeError):
    """The state store cannot be read or written (answered 503; the request is not acknowledged)."""


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
class HistoryWindow:
    """Which history rows a batch needs, in microseconds since the epoch.

    Customer rows with ``customer_from <= ts < customer_to`` and terminal rows with
    ``terminal_from <= ts < terminal_to``.
    """

    customer_from: int
    customer_to: int
    terminal_from: int
    terminal_to: int

    @classmethod
    def for_batch(cls, ts_us: Sequence[int], params: FeatureParams) -> HistoryWindow:
        """The window covering every transaction of a batch.

        Args:
            ts_us: The batch's timestamps (microseconds).
            params: The feature parameters of the model (window lengths, label delay).

        Returns:
            The window: wide enough for every window of :func:`compute_features`.
        """
        first_s = min(ts_us) // _US_PER_S
        last_s = max(ts_us) // _US_PER_S
        day = 86_400
        delay = params.terminal_label_delay_days * day
        customer_back = max(params.customer_windows_days, default=0) * day
        terminal_back = delay + max(params.terminal_windows_days, default=0) * day
        return cls(
            customer_from=(first_s - customer_back) * _US_PER_S,
            customer_to=(last_s + 1) * _US_PER_S,
            terminal_from=(first_s - terminal_back) * _US_PER_S,
            terminal_to=(last_s - delay + 1) * _US_PER_S,
        )


@dataclass(frozen=True)
class ModelRef:
    """The model a prediction came from, with its ordered feature list."""

    name: str
    version: str
    uri: str
    features: tuple[str, ...]
    feature_dtypes: tuple[str, ...]


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


class StateStore(abc.ABC):
    """What the service needs from a state store (SQLite here; Redis/PostgreSQL possible)."""

    @abc.abstractmethod
    def history(
        self,
        customer_keys: Iterable[int | str],
        terminal_keys: Iterable[int | str],
        window: HistoryWindow,
    ) -> History:
        """Earlier transactions of these customers and terminals within ``window``."""

    @abc.abstractmethod
    def record_scores(
        self,
        rows: Sequence[Any],
        features: np.ndarray,
        probabilities: np.ndarray,
        decisions: np.ndarray,
        model: ModelRef,
        scored_at: datetime,
    ) -> None:
        """Atomically add transactions to the history and their predictions to the log.

        Raises:
            DuplicateTransactionError: An id is already in the history (nothing written).
            StateStoreError: The store cannot be written (nothing written).
        """

    @abc.abstractmethod
    def record_shadow_scores(
        self,
        rows: Sequence[Any],
        features: np.ndarray,
        probabilities: np.ndarray,
        decisions: np.ndarray,
        model: ModelRef,
        scored_at: datetime,
    ) -> None:
        """Log the shadow model's predictions (never the history)."""

    @abc.abstractmethod
    def logged_predictions(self, ids: Sequence[int]) -> dict[int, LoggedPrediction]:
        """The logged champion predictions of these ids."""

    @abc.abstractmethod
    def record_labels(self, labels: Sequence[Any], received_at: datetime) -> int:
        """Log labels and attach them to the history; returns how many ids were known."""

    @abc.abstractmethod
    def check_writable(self) -> None:
        """Raise :class:`StateStoreError` unless a write succeeds now."""

    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None:
        """A value of the key/value table."""

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the key/value table."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="microseconds")


class SqliteStateStore(StateStore):
    """:class:`StateStore` on one SQLite file in WAL mode, shared by processes and threads.

    One connection per thread and process (re-opened after a fork or an error).

    Args:
        path: The database file (its folder is created).
        synchronous: The ``synchronous`` pragma: NORMAL (crash-safe) or FULL (power-loss-safe).
        busy_timeout_ms: How long to wait for the write lock before failing.
    """

    def __init__(
        self, path: str | os.PathLike[str], synchronous: str = "NORMAL", busy_timeout_ms: int = 5000
    ) -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._thread_lock = threading.Lock()
        self._registered: set[tuple[str, str]] = set()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._conn()
            conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            self._reset()
            raise StateStoreError(f"state store {self.path} cannot be opened: {exc}") from exc

    # -- connections -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=0
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA temp_store = MEMORY")
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def _reset(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and self._local.pid == os.getpid():
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing a broken connection
                pass

    def close(self) -> None:
        """Close this thread's connection."""
        self._reset()

    def _fail(self, action: str, exc: Exception) -> StateStoreError:
        self._reset()
        logger.error("state store %s: %s failed: %s", self.path, action, exc)
        return StateStoreError(f"state store unavailable ({action}): {exc}")

    # -- reads -------------------------------------------------------------------------------

    def history(
        self,
        customer_keys: Iterable[int | str],
        terminal_keys: Iterable[int | str],
        window: HistoryWindow,
    ) -> History:
        """Earlier transactions of these customers and terminals within ``window``.

        Args:
            customer_keys: Canonical customer ids.
            terminal_keys: Canonical terminal ids.
            window: Time bounds of the rows needed.

        Returns:
            The rows, each once.

        Raises:
            StateStoreError: On a database error.
        """
        customers = list(dict.fromkeys(customer_keys))
        terminals = list(dict.fromkeys(terminal_keys))
        cols = "transaction_id, ts_us, customer_id, terminal_id, amount, is_fraud"
        rows: list[tuple] = []
        try:
            conn = self._conn()
            if len(customers) <= _IN_CHUNK and len(terminals) <= _IN_CHUNK:
                sql = (
                    f"SELECT {cols} FROM transactions WHERE customer_id IN "
                    f"({','.join('?' * len(customers))}) AND ts_us >= ? AND ts_us < ? UNION "
                    f"SELECT {cols} FROM transactions WHERE terminal_id IN "
                    f"({','.join('?' * len(terminals))}) AND ts_us >= ? AND ts_us < ?"
                )
                rows = conn.execute(
                    sql,
                    (
                        *customers,
                        window.customer_from,
                        window.customer_to,
                        *terminals,
                        window.terminal_from,
                        window.terminal_to,
                    ),
                ).fetchall()
                return _history_from_rows(rows, dedupe=False)
            for column, keys, lo, hi in (
                ("customer_id", customers, window.customer_from, window.customer_to),
                ("terminal_id", terminals, window.terminal_from, window.terminal_to),
            ):
                for start in range(0, len(keys), _IN_CHUNK):
                    chunk = keys[start : start + _IN_CHUNK]
                    sql = (
                        f"SELECT {cols} FROM transactions WHERE {column} IN "
                        f"({','.join('?' * len(chunk))}) AND ts_us >= ? AND ts_us < ?"
                    )
                    rows.extend(conn.execute(sql, (*chunk, lo, hi)).fetchall())
        except sqlite3.Error as exc:
            raise self._fail("history read", exc) from exc
        return _history_from_rows(rows, dedupe=True)

    def logged_predictions(self, ids: Sequence[int]) -> dict[int, LoggedPrediction]:
        """The logged champion predictions of these ids (the latest per id).

        Args:
            ids: Transaction ids.

        Returns:
            Id to logged prediction, for the ids that have one.

        Raises:
            StateStoreError: On a database error.
        """
        out: dict[int, LoggedPrediction] = {}
        try:
            conn = self._conn()
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = list(ids[start : start + _IN_CHUNK])
                sql = (
                    "SELECT transaction_id, timestamp, customer_id, terminal_id, amount, "
                    "fraud_probability, is_fraud_predicted, model_name, model_version "
                    "FROM prediction_log WHERE transaction_id IN "
                    f"({','.join('?' * len(chunk))}) ORDER BY log_id"
                )
                for row in conn.execute(sql, chunk):
                    out[row[0]] = LoggedPrediction(*row[:6], bool(row[6]), *row[7:])
        except sqlite3.Error as exc:
            raise self._fail("prediction log read", exc) from exc
        return out

    def get_meta(self, key: str) -> str | None:
        """A value of the ``meta`` table, or None.

        Raises:
            StateStoreError: On a database error.
        """
        try:
            row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._fail("meta read", exc) from exc
        return None if row is None else row[0]

    def count(self, table: str) -> int:
        """Number of rows of a table of the store (for tests and the CLI)."""
        if table not in {"transactions", "prediction_log", "shadow_prediction_log", "label_log"}:
            raise ValueError(f"unknown table {table}")
        try:
            return int(self._conn().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        except sqlite3.Error as exc:
            raise self._fail("count", exc) from exc

    # -- change feed (for the workers' history caches) -------------------------------------

    def history_snapshot(self, keep_days: int) -> tuple[list[tuple], int, int, int]:
        """Rows of the last ``keep_days`` days before the latest one, in ``seq`` order.

        Returns:
            ``(rows, horizon_us, last_seq, last_label_id)``: rows are ``(seq, transaction_id,
            ts_us, customer_id, terminal_id, amount, is_fraud)``; every row with
            ``ts_us >= horizon_us`` is included; the ids let :meth:`changes_since` continue.

        Raises:
            StateStoreError: On a database error.
        """
        try:
            conn = self._conn()
            conn.execute("BEGIN")  # one snapshot for the three reads
            try:
                last_seq, max_ts = conn.execute(
                    "SELECT COALESCE(MAX(seq), 0), MAX(ts_us) FROM transactions"
                ).fetchone()
                last_label = conn.execute(
                    "SELECT COALESCE(MAX(log_id), 0) FROM label_log"
                ).fetchone()[0]
                horizon = (max_ts or 0) - keep_days * 86_400 * _US_PER_S
                rows = conn.execute(
                    f"SELECT {_FEED_COLUMNS} FROM transactions WHERE ts_us >= ? AND seq <= ? "
                    "ORDER BY seq",
                    (horizon, last_seq),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._fail("history snapshot", exc) from exc
        return rows, horizon, int(last_seq), int(last_label)

    def changes_since(self, seq: int, label_id: int) -> tuple[list[tuple], list[tuple]]:
        """History rows added after ``seq`` and labels received after ``label_id``.

        Returns:
            ``(rows, labels)``: rows as in :meth:`history_snapshot`; labels are
            ``(log_id, seq of the labelled transaction, is_fraud)``, for labelled transactions
            that are in the history.

        Raises:
            StateStoreError: On a database error.
        """
        try:
            conn = self._conn()
            rows = conn.execute(
                f"SELECT {_FEED_COLUMNS} FROM transactions WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
            labels = conn.execute(
                "SELECT l.log_id, t.seq, l.is_fraud FROM label_log AS l "
                "JOIN transactions AS t ON t.transaction_id = l.transaction_id "
                "WHERE l.log_id > ? ORDER BY l.log_id",
                (label_id,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._fail("history changes", exc) from exc
        return rows, labels

    def prune(self, keep_days: int) -> int:
        """Delete history rows older than ``keep_days`` before the latest (the logs stay).

        Returns:
            The number of rows deleted.

        Raises:
            StateStoreError: On a database error.
        """

        def delete(conn: sqlite3.Connection) -> int:
            max_ts = conn.execute("SELECT MAX(ts_us) FROM transactions").fetchone()[0]
            if max_ts is None:
                return 0
            cursor = conn.execute(
                "DELETE FROM transactions WHERE ts_us < ?",
                (max_ts - keep_days * 86_400 * _US_PER_S,),
            )
            return cursor.rowcount

        return int(self._write("prune", delete))

    # -- writes ------------------------------------------------------------------------------

    def _writer_lock(self) -> None:
        """Take the writers' lock: ``flock`` on ``<db>.writelock`` (and a thread lock).

        SQLite's own busy handler sleeps 1, 2, 5, 10 ms... between attempts, so two workers that
        collide on a sub-millisecond write would wait milliseconds. The service's writers queue on
        this lock instead, re-trying every 50 microseconds at first; SQLite's busy timeout still
        guards against other processes holding the database.

        Raises:
            StateStoreError: Not obtained within the busy timeout.
        """
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        if not self._thread_lock.acquire(timeout=max(self.busy_timeout_ms / 1000, 0.001)):
            raise StateStoreError("state store busy: writers' lock not obtained in time")
        try:
            fd = getattr(self._local, "lock_fd", None)
            if fd is None or self._local.lock_pid != os.getpid():
                fd = os.open(f"{self.path}.writelock", os.O_RDWR | os.O_CREAT, 0o644)
                self._local.lock_fd, self._local.lock_pid = fd, os.getpid()
            pause = 50e-6
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StateStoreError(
                            "state store busy: writers' lock not obtained in time"
                        ) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 1e-3)
        except BaseException:
            self._thread_lock.release()
            raise

    def _writer_unlock(self) -> None:
        try:
            fcntl.flock(self._local.lock_fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _write(self, action: str, fn: Any) -> Any:
        """Run ``fn(conn)`` inside ``BEGIN IMMEDIATE ... COMMIT`` under the writers' lock.

        Rolls back on any error; database errors become :class:`StateStoreError`.
        """
        try:
            self._writer_lock()
        except OSError as exc:
            raise self._fail(action, exc) from exc
        try:
            return self._write_locked(action, fn)
        finally:
            self._writer_unlock()

    def _write_locked(self, action: str, fn: Any) -> Any:
        try:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._fail(action, exc) from exc
        try:
            result = fn(conn)
            conn.execute("COMMIT")
            return result
        except BaseException as exc:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                self._reset()
            if isinstance(exc, sqlite3.IntegrityError | DuplicateTransactionError):
                raise
            if isinstance(exc, sqlite3.Error):
                raise self._fail(action, exc) from exc
            raise

    def _register_model(self, conn: sqlite3.Connection, model: ModelRef, now: str) -> None:
        key = (model.name, model.version)
        if key in self._registered:
            return
        conn.execute(
            "INSERT OR IGNORE INTO model_versions VALUES (?, ?, ?, ?, ?, ?)",
            (
                model.name,
                model.version,
                model.uri,
                json.dumps(list(model.features)),
                json.dumps(list(model.feature_dtypes)),
                now,
            ),
        )

    def _log_rows(
        self,
        rows: Sequence[Any],
        features: np.ndarray,
        probabilities: np.ndarray,
        decisions: np.ndarray,
        model: ModelRef,
        scored_at: str,
    ) -> list[tuple]:
        blob = np.ascontiguousarray(features, dtype="<f8")
        return [
            (
                tx.transaction_id,
                _iso(tx.timestamp),
                tx.customer_id,
                tx.terminal_id,
                tx.amount,
                blob[i].tobytes(),
                float(probabilities[i]),
                int(bool(decisions[i])),
                model.name,
                model.version,
                scored_at,
            )
            for i, tx in enumerate(rows)
        ]

    def record_scores(
        self,
        rows: Sequence[Any],
        features: np.ndarray,
        probabilities: np.ndarray,
        decisions: np.ndarray,
        model: ModelRef,
        scored_at: datetime,
    ) -> None:
        """Add scored transactions to the history and their predictions to the log, atomically.

        Args:
            rows: Validated transactions (:class:`~fraud_kedro.api.validation.Transaction`).
            features: Their features, shape ``(n, len(model.features))``.
            probabilities: Fraud probabilities.
            decisions: Decisions at the model's threshold.
            model: The model.
            scored_at: When they were scored (naive UTC).

        Raises:
            DuplicateTransactionError: An id is already in the history (nothing written).
            StateStoreError: The store cannot be written (nothing written).
        """
        now = _iso(scored_at)
        history_rows = [
            (tx.transaction_id, tx.ts_us, tx.customer_key, tx.terminal_key, tx.amount, "scored")
            for tx in rows
        ]
        log_rows = self._log_rows(rows, features, probabilities, decisions, model, now)

        def write(conn: sqlite3.Connection) -> None:
            self._register_model(conn, model, now)
            conn.executemany(
                "INSERT INTO transactions (transaction_id, ts_us, customer_id, terminal_id, "
                "amount, source) VALUES (?, ?, ?, ?, ?, ?)",
                history_rows,
            )
            conn.executemany(
                "INSERT INTO prediction_log (transaction_id, timestamp, customer_id, terminal_id, "
                "amount, features, fraud_probability, is_fraud_predicted, model_name, "
                "model_version, scored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                log_rows,
            )

        try:
            self._write("prediction log write", write)
        except sqlite3.IntegrityError as exc:
            raise DuplicateTransactionError(self._known_ids([tx.transaction_id for tx in rows])) from exc
        self._registered.add((model.name, model.version))

    def _known_ids(self, ids: Sequence[int]) -> list[int]:
        known: list[int] = []
        try:
            conn = self._conn()
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = list(ids[start : start + _IN_CHUNK])
                sql = (
                    "SELECT transaction_id FROM transactions WHERE transaction_id IN "
                    f"({','.join('?' * len(chunk))})"
                )
                known.extend(r[0] for r in conn.execute(sql, chunk))
        except sqlite3.Error as exc:
            raise self._fail("history read", exc) from exc
        return known

    def record_shadow_scores(
        self,
        rows: Sequence[Any],
        features: np.ndarray,
        probabilities: np.ndarray,
        decisions: np.ndarray,
        model: ModelRef,
        scored_at: datetime,
    ) -> None:
        """Log shadow predictions in ``shadow_prediction_log`` (the history is not touched).

        Raises:
            StateStoreError: The store cannot be written.
        """
        now = _iso(scored_at)
        log_rows = self._log_rows(rows, features, probabilities, decisions, model, now)

        def write(conn: sqlite3.Connection) -> None:
            self._register_model(conn, model, now)
            conn.executemany(
                "INSERT INTO shadow_prediction_log (transaction_id, timestamp, customer_id, "
                "terminal_id, amount, features, fraud_probability, is_fraud_predicted, "
                "model_name, model_version, scored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                log_rows,
            )

        self._write("shadow log write", write)
        self._registered.add((model.name, model.version))

    def record_labels(self, labels: Sequence[Any], received_at: datetime) -> int:
        """Log labels and set ``is_fraud`` on the matching history rows.

        Args:
            labels: :class:`~fraud_kedro.api.validation.Label` items.
            received_at: Arrival time (naive UTC).

        Returns:
            How many of the ids are in the history.

        Raises:
            StateStoreError: The store cannot be written (nothing written).
        """
        now = _iso(received_at)

        def write(conn: sqlite3.Connection) -> int:
            conn.executemany(
                "INSERT INTO label_log (transaction_id, is_fraud, received_at) VALUES (?, ?, ?)",
                [(lab.transaction_id, lab.is_fraud, now) for lab in labels],
            )
            before = conn.total_changes
            conn.executemany(
                "UPDATE transactions SET is_fraud = ? WHERE transaction_id = ?",
                [(lab.is_fraud, lab.transaction_id) for lab in labels],
            )
            return conn.total_changes - before

        return int(self._write("label log write", write))

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the ``meta`` table.

        Raises:
            StateStoreError: On a database error.
        """
        self._write(
            "meta write",
            lambda conn: conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            ),
        )

    def check_writable(self) -> None:
        """Raise :class:`StateStoreError` unless the store can take new data now.

        Two probes: a heartbeat row (locks, a read-only or broken database) and 4 KiB written to a
        fresh file next to it. The heartbeat alone is not enough: rewriting a row fits in pages
        SQLite already owns, so it succeeds on a full disk while every score (which appends) fails.
        """
        self.set_meta("heartbeat", str(os.getpid()))
        probe = f"{self.path}.probe"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                if os.write(fd, b"\0" * 4096) != 4096:
                    raise OSError("short write")
            finally:
                os.close(fd)
        except OSError as exc:
            logger.error("state store %s: disk probe failed: %s", self.path, exc)
            raise StateStoreError(f"state store unavailable (disk): {exc}") from exc

    # -- seeding -----------------------------------------------------------------------------

    def is_seeded(self) -> bool:
        """Whether the history was seeded or already holds transactions."""
        if self.get_meta("seeded_at") is not None:
            return True
        try:
            row = self._conn().execute("SELECT 1 FROM transactions LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            raise self._fail("history read", exc) from exc
        return row is not None

    def seed(self, transactions: pd.DataFrame, params: FeatureParams, days: int | None = None) -> int:
        """Load the last ``days`` days of ``transactions`` (with labels) into the history.

        Rows whose id is already there are skipped, so seeding twice is harmless.

        Args:
            transactions: Transactions in the contract schema (column names of ``params``).
            params: Feature parameters (column names; ``history_days`` is the default depth).
            days: How many days before the latest transaction to keep.

        Returns:
            The number of rows inserted.

        Raises:
            StateStoreError: On a database error.
            ValueError: When a required column is missing or ids are not integers.
        """
        c = params.columns
        missing = [
            col
            for col in (c.transaction_id, c.timestamp, c.customer_id, c.terminal_id, c.amount)
            if col not in transactions.columns
        ]
        if missing:
            raise ValueError(f"seed data lacks column(s) {missing}")
        if transactions.empty:
            return 0
        days = params.history_days if days is None else days
        ts = pd.to_datetime(transactions[c.timestamp])
        if getattr(ts.dt, "tz", None) is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        ts_us = ts.to_numpy(dtype="datetime64[us]").astype(np.int64)
        keep = ts_us >= ts_us.max() - days * 86_400 * _US_PER_S
        frame = transactions.loc[keep]
        ids = pd.to_numeric(frame[c.transaction_id], errors="raise").to_numpy(dtype=np.int64)
        if c.label in frame.columns:
            raw_labels = pd.to_numeric(frame[c.label], errors="coerce").to_numpy(dtype=np.float64)
            labels: list[Any] = [None if np.isnan(v) else int(v) for v in raw_labels]
        else:
            labels = [None] * len(frame)
        rows = list(
            zip(
                ids.tolist(),
                ts_us[keep].tolist(),
                _canonical_ids(frame[c.customer_id]),
                _canonical_ids(frame[c.terminal_id]),
                frame[c.amount].to_numpy(dtype=np.float64).tolist(),
                labels,
                strict=True,
            )
        )

        def write(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO transactions (transaction_id, ts_us, customer_id, "
                "terminal_id, amount, is_fraud, source) VALUES (?, ?, ?, ?, ?, ?, 'seed')",
                rows,
            )
            inserted = conn.total_changes - before
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('seeded_at', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (_iso(datetime.now(UTC).replace(tzinfo=None)),),
            )
            return inserted

        inserted = int(self._write("seed", write))
        logger.info(
            "seeded the history of %s with %d of %d transactions (last %d days)",
            self.path,
            inserted,
            len(transactions),
            days,
        )
        return inserted


def _canonical_ids(column: pd.Series) -> list[int | str]:
    """Canonical ids of a data column (the keys the service derives from requests)."""
    from fraud_kedro.api.validation import canonical_id

    if pd.api.types.is_integer_dtype(column.dtype) and not column.isna().any():
        return column.astype(np.int64).tolist()
    return [canonical_id(v if isinstance(v, str) else str(v)) for v in column.tolist()]


def _keys_array(values: Sequence[Any]) -> np.ndarray:
    """Ids as int64 when they are all ints (the common case), else an object array."""
    if all(type(v) is int for v in values):
        return np.fromiter(values, dtype=np.int64, count=len(values))
    return np.array(values, dtype=object)


def _history_from_rows(rows: list[tuple], dedupe: bool) -> History:
    n = len(rows)
    if n == 0:
        empty = np.array([], dtype=np.int64)
        return History(
            empty,
            empty,
            empty,
            empty,
            np.array([], dtype=np.float64),
            np.array([], dtype=np.float64),
        )
    ids, ts, customers, terminals, amounts, labels = zip(*rows, strict=True)
    history = History(
        np.fromiter(ids, dtype=np.int64, count=n),
        np.fromiter(ts, dtype=np.int64, count=n),
        _keys_array(customers),
        _keys_array(terminals),
        np.fromiter(amounts, dtype=np.float64, count=n),
        np.array(labels, dtype=np.float64),
    )
    if dedupe:
        _, first = np.unique(history.transaction_id, return_index=True)
        if len(first) < n:
            first.sort()
            history = History(*(col[first] for col in history))
    return history


def open_store(
    path: str | os.PathLike[str], synchronous: str = "NORMAL", busy_timeout_ms: int = 5000
) -> SqliteStateStore:
    """Open (and create if needed) the SQLite state store at ``path``."""
    return SqliteStateStore(path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)


def seed_history(
    db: str | os.PathLike[str] | SqliteStateStore,
    transactions_df: pd.DataFrame,
    params: FeatureParams | dict | None = None,
    days: int | None = None,
) -> int:
    """Seed the serving history with the data the model was trained on.

    Only the last ``days`` (default: ``params.history_days``) days before the latest transaction
    are kept: older rows never enter a feature window.

    Args:
        db: The state store or the path of its SQLite file.
        transactions_df: Validated transactions in the contract schema, with labels.
        params: Feature parameters (``FeatureParams`` or the ``features`` parameter dict).
        days: Depth of history to keep.

    Returns:
        The number of rows inserted.
    """
    if not isinstance(params, FeatureParams):
        params = FeatureParams.from_dict(params)
    store = db if isinstance(db, SqliteStateStore) else open_store(db)
    try:
        return store.seed(transactions_df, params, days)
    finally:
        if store is not db:
            store.close()


def _read_log(db_path: str | os.PathLike[str], table: str) -> pd.DataFrame:
    keys = ["transaction_id", "timestamp", "customer_id", "terminal_id"]
    tail = ["fraud_probability", "is_fraud_predicted", "model_version", "scored_at"]
    path = Path(db_path)
    if not path.exists():
        raise FileNotFoundError(f"no state store at {path}")
    conn = sqlite3.connect(path)
    try:
        versions = {
            (name, version): (json.loads(feats), json.loads(dtypes))
            for name, version, feats, dtypes in conn.execute(
                "SELECT model_name, model_version, features, feature_dtypes FROM model_versions"
            )
        }
        rows = conn.execute(
            "SELECT transaction_id, timestamp, customer_id, terminal_id, features, "
            "fraud_probability, is_fraud_predicted, model_version, scored_at, model_name "
            f"FROM {table} ORDER BY log_id"
        ).fetchall()
    finally:
        conn.close()
    feature_order: list[str] = []
    dtypes: dict[str, str] = {}
    for feats, kinds in versions.values():
        for name, kind in zip(feats, kinds, strict=True):
            if name not in dtypes:
                feature_order.append(name)
                dtypes[name] = kind
    if not rows:
        columns = keys + feature_order + tail
        return pd.DataFrame({col: pd.Series(dtype=object) for col in columns})
    frame = pd.DataFrame.from_records(
        rows, columns=[*keys, "features", *tail, "model_name"]
    )
    values = {name: np.full(len(frame), np.nan) for name in feature_order}
    for (name, version), group in frame.groupby(["model_name", "model_version"], sort=False):
        feats = versions.get((name, version), ([], []))[0]
        if not feats:
            continue
        matrix = np.frombuffer(b"".join(group["features"]), dtype="<f8").reshape(-1, len(feats))
        positions = group.index.to_numpy()
        for j, feat in enumerate(feats):
            values[feat][positions] = matrix[:, j]
    out = frame[keys].copy()
    out["timestamp"] = pd.to_datetime(out["timestamp"])
    for col in ("customer_id", "terminal_id"):
        if all(isinstance(v, int) for v in out[col]):
            out[col] = out[col].astype(np.int64)
    features = pd.DataFrame(values, index=frame.index)
    for name, kind in dtypes.items():
        if kind.startswith("int") and not features[name].isna().any():
            features[name] = features[name].astype(kind)
    result = pd.concat([out, features, frame[tail]], axis=1)
    result["is_fraud_predicted"] = result["is_fraud_predicted"].astype(bool)
    result["scored_at"] = pd.to_datetime(result["scored_at"])
    result["model_version"] = result["model_version"].astype(str)
    return result


def read_prediction_log(db_path: str | os.PathLike[str], shadow: bool = False) -> pd.DataFrame:
    """The prediction log as a DataFrame (read by the monitoring pipeline).

    Args:
        db_path: The SQLite file of the state store.
        shadow: Read the shadow (challenger) log instead of the champion's.

    Returns:
        Columns ``transaction_id, timestamp, customer_id, terminal_id, <features...>,
        fraud_probability, is_fraud_predicted, model_version, scored_at``, in scoring order.
    """
    return _read_log(db_path, _LOG_TABLES[shadow])


def read_label_log(db_path: str | os.PathLike[str]) -> pd.DataFrame:
    """The label log as a DataFrame: ``transaction_id, is_fraud, received_at``.

    Args:
        db_path: The SQLite file of the state store.

    Returns:
        One row per label received, in arrival order.
    """
    path = Path(db_path)
    if not path.exists():
        raise FileNotFoundError(f"no state store at {path}")
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT transaction_id, is_fraud, received_at FROM label_log ORDER BY log_id"
        ).fetchall()
    finally:
        conn.close()
    frame = pd.DataFrame.from_records(rows, columns=["transaction_id", "is_fraud", "received_at"])
    frame["transaction_id"] = frame["transaction_id"].astype(np.int64)
    frame["is_fraud"] = frame["is_fraud"].astype(np.int64)
    frame["received_at"] = pd.to_datetime(frame["received_at"])
    return frame
