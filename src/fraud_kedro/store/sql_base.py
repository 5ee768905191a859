"""What the SQLite and PostgreSQL backends of the store share: the SQL and the flow of every
method whose logic is the same on both, written once with ``?`` placeholders.

A backend (:mod:`fraud_kedro.store.sqlite`, :mod:`fraud_kedro.store.postgres`) supplies its
connection, its transactions (``_write``, ``_snapshot``) and how values are encoded and decoded
(``_logged_tx``, ``_flag``, ``_feed_rows``, ...); the methods here are the
:class:`~fraud_kedro.store.interface.StateStore` methods built on those.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np

from fraud_kedro.features import HistoryWindow
from fraud_kedro.store.interface import TABLES
from fraud_kedro.store.types import (
    DuplicateTransactionError,
    EntityKeys,
    History,
    ModelRef,
    RawLog,
    Role,
    ScoredBatch,
    StateStoreError,
)

US_PER_S = 1_000_000
HISTORY_COLUMNS = "transaction_id, ts_us, customer_id, terminal_id, amount, is_fraud"
FEED_COLUMNS = "seq, transaction_id, ts_us, customer_id, terminal_id, amount, is_fraud"
LOG_INSERT = (
    "INSERT INTO prediction_log (role, transaction_id, timestamp, customer_id, terminal_id, "
    "amount, features, fraud_probability, is_fraud_predicted, model_name, model_version, "
    "scored_at, reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
HISTORY_INSERT = (
    "INSERT INTO transactions (transaction_id, ts_us, customer_id, terminal_id, amount, source) "
    "VALUES (?, ?, ?, ?, ?, 'scored')"
)
META_UPSERT = (
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
SEEDED_OR_NOT_EMPTY = (
    "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'seeded_at') OR EXISTS (SELECT 1 FROM transactions)"
)
_MODEL_VERSIONS = "SELECT model_name, model_version, features, feature_dtypes FROM model_versions"
_LOG_SELECT = (
    "SELECT transaction_id, timestamp, customer_id, terminal_id, features, fraud_probability, "
    "is_fraud_predicted, model_version, scored_at, model_name, reasons FROM prediction_log "
    "WHERE role = ? ORDER BY log_id"
)


def iso(dt: datetime) -> str:
    """A naive UTC time as stored in the logs (ISO 8601, microseconds)."""
    return dt.isoformat(timespec="microseconds")


class SqlStateStore:
    """The logic the two SQL backends share (not a store by itself).

    Class attributes a backend sets: ``PARAM`` (its placeholder), ``DB_ERROR`` (its driver's error
    class), ``DUPLICATE_ERROR`` (what a known transaction id raises), ``MODEL_INSERT`` (register a
    model version once) and ``HIDE_CAUSE`` (drop the driver's exception as the cause, when its
    text may hold a password).
    """

    PARAM: ClassVar[str] = "?"
    DB_ERROR: ClassVar[type[Exception]] = Exception
    DUPLICATE_ERROR: ClassVar[type[Exception]] = Exception
    MODEL_INSERT: ClassVar[str] = ""
    HIDE_CAUSE: ClassVar[bool] = False

    description: str

    def __init__(self, description: str) -> None:
        self.description = description
        self._local = threading.local()
        self._registered: set[tuple[str, str]] = set()

    # -- what a backend supplies ---------------------------------------------------------------

    def _conn(self) -> Any:
        raise NotImplementedError

    def _write(self, action: str, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(conn)`` in one write transaction; driver errors become StateStoreError."""
        raise NotImplementedError

    def _history(self, customers: list[Any], terminals: list[Any], window: HistoryWindow) -> History:
        """The rows of :meth:`history` for distinct keys."""
        raise NotImplementedError

    def _snapshot(self, conn: Any) -> contextlib.AbstractContextManager[Any]:
        """One consistent read of several statements."""
        raise NotImplementedError

    def _batch(self, conn: Any) -> contextlib.AbstractContextManager[Any]:
        """Send the statements of the block together where the driver can (default: one by one)."""
        return contextlib.nullcontext()

    def _error_text(self, exc: Exception) -> str:
        return str(exc)

    def _stamp(self, dt: datetime) -> Any:
        """A time as this backend's log columns take it."""
        return dt

    def _logged_tx(self, tx: Any) -> tuple[Any, Any, Any]:
        """``(timestamp, customer_id, terminal_id)`` of a transaction as the log stores them."""
        raise NotImplementedError

    @staticmethod
    def _flag(decision: Any) -> Any:
        return bool(decision)

    @staticmethod
    def _key_in(key: int | str) -> Any:
        """A canonical customer or terminal key as the history stores it."""
        return key

    def _known_ids(self, ids: Sequence[int]) -> list[int]:
        raise NotImplementedError

    def _feed_rows(self, rows: list[tuple]) -> list[tuple]:
        return rows

    def _decode_served(self, rows: list[tuple]) -> list[tuple]:
        return rows

    def _log_cutoff(self, latest: Any, days: int) -> Any:
        """The time ``days`` before the latest logged transaction, as the log stores times."""
        raise NotImplementedError

    def _fetch_log(self, conn: Any, role: Role) -> list[tuple]:
        return conn.execute(self._q(_LOG_SELECT), (role,)).fetchall()

    def _decode_log(self, rows: list[tuple]) -> list[tuple]:
        return rows

    # -- shared plumbing -------------------------------------------------------------------------

    def _q(self, sql: str) -> str:
        """``sql`` with this backend's placeholder."""
        return sql if self.PARAM == "?" else sql.replace("?", self.PARAM)

    def _reset(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and self._local.pid == os.getpid():
            try:
                conn.close()
            except self.DB_ERROR:  # pragma: no cover - closing a broken connection
                pass

    def _fail(self, action: str, exc: Exception) -> StateStoreError:
        self._reset()
        message = self._error_text(exc)
        logging.getLogger(type(self).__module__).error(
            "state store %s: %s failed: %s", self.description, action, message
        )
        return StateStoreError(f"state store unavailable ({action}): {message}")

    def _read(self, action: str, fn: Callable[[Any], Any]) -> Any:
        try:
            return fn(self._conn())
        except StateStoreError:
            raise
        except self.DB_ERROR as exc:
            if self.HIDE_CAUSE:
                raise self._fail(action, exc) from None
            raise self._fail(action, exc) from exc

    def _register_model(self, conn: Any, model: ModelRef, now: Any) -> None:
        if (model.name, model.version) in self._registered:
            return
        conn.execute(
            self._q(self.MODEL_INSERT),
            (
                model.name,
                model.version,
                model.uri,
                json.dumps(list(model.features)),
                json.dumps(list(model.feature_dtypes)),
                now,
            ),
        )

    def _log_rows(self, batch: ScoredBatch, model: ModelRef, scored_at: Any, role: Role) -> list[tuple]:
        blob = np.ascontiguousarray(batch.features, dtype="<f8")
        flag, logged = self._flag, self._logged_tx
        probabilities, decisions, reasons = batch.probabilities, batch.decisions, batch.reasons
        return [
            (
                role,
                tx.transaction_id,
                *logged(tx),
                tx.amount,
                blob[i].tobytes(),
                float(probabilities[i]),
                flag(decisions[i]),
                model.name,
                model.version,
                scored_at,
                json.dumps(reasons[i]) if reasons is not None else None,
            )
            for i, tx in enumerate(batch.rows)
        ]

    def _insert_scores(
        self, conn: Any, model: ModelRef, now: Any, history_rows: list[tuple] | None, log_rows: list[tuple]
    ) -> None:
        """Register the model and insert history rows (when given) and prediction-log rows."""
        with self._batch(conn):
            self._register_model(conn, model, now)
            cur = conn.cursor()
            try:
                if history_rows is not None:
                    cur.executemany(self._q(HISTORY_INSERT), history_rows)
                cur.executemany(self._q(LOG_INSERT), log_rows)
            finally:
                cur.close()

    def _mark_seeded(self, conn: Any) -> None:
        conn.execute(self._q(META_UPSERT), ("seeded_at", iso(datetime.now(UTC).replace(tzinfo=None))))

    # -- StateStore methods ----------------------------------------------------------------------

    def history(self, customer_keys: EntityKeys, terminal_keys: EntityKeys, window: HistoryWindow) -> History:
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
        return self._history(list(dict.fromkeys(customer_keys)), list(dict.fromkeys(terminal_keys)), window)

    def record_scores(
        self, batch: ScoredBatch, model: ModelRef, scored_at: datetime, role: Role = "champion"
    ) -> None:
        """Log a batch's predictions with their ``role`` (each score's reasons as JSON when given;
        None = NULL); the champion's also add the transactions to the history, atomically.

        Args:
            batch: The transactions, their features, probabilities, decisions and reasons.
            model: The model.
            scored_at: When they were scored (naive UTC).
            role: ``champion`` (history and log) or ``shadow`` (log only).

        Raises:
            DuplicateTransactionError: A champion id is already in the history (nothing written).
            StateStoreError: The store cannot be written (nothing written).
        """
        now = self._stamp(scored_at)
        log_rows = self._log_rows(batch, model, now, role)
        rows = batch.rows
        if role != "champion":
            self._write(
                f"{role} log write", lambda conn: self._insert_scores(conn, model, now, None, log_rows)
            )
            self._registered.add((model.name, model.version))
            return
        key = self._key_in
        history_rows = [
            (tx.transaction_id, tx.ts_us, key(tx.customer_key), key(tx.terminal_key), tx.amount)
            for tx in rows
        ]
        try:
            self._write(
                "prediction log write",
                lambda conn: self._insert_scores(conn, model, now, history_rows, log_rows),
            )
        except self.DUPLICATE_ERROR as exc:
            known = self._known_ids([tx.transaction_id for tx in rows])
            if self.HIDE_CAUSE:
                raise DuplicateTransactionError(known) from None
            raise DuplicateTransactionError(known) from exc
        self._registered.add((model.name, model.version))

    def get_meta(self, key: str) -> str | None:
        """A value of the ``meta`` table, or None.

        Raises:
            StateStoreError: On a database error.
        """
        sql = self._q("SELECT value FROM meta WHERE key = ?")
        row = self._read("meta read", lambda c: c.execute(sql, (key,)).fetchone())
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the ``meta`` table.

        Raises:
            StateStoreError: On a database error.
        """
        self._write("meta write", lambda c: c.execute(self._q(META_UPSERT), (key, value)))

    def count(self, table: str) -> int:
        """Number of rows of a table of the store (for tests and the CLI)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table}")
        return int(self._read("count", lambda c: c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]))

    def is_seeded(self) -> bool:
        """Whether the history was seeded or already holds transactions."""
        return bool(self._read("history read", lambda c: c.execute(SEEDED_OR_NOT_EMPTY).fetchone()[0]))

    def history_snapshot(self, keep_days: int) -> tuple[list[tuple], int, int, int]:
        """Rows of the last ``keep_days`` days before the latest one, in ``seq`` order.

        Returns:
            ``(rows, horizon_us, last_seq, last_label_id)``: rows are ``(seq, transaction_id,
            ts_us, customer_id, terminal_id, amount, is_fraud)``; every row with
            ``ts_us >= horizon_us`` is included; the ids let :meth:`changes_since` continue.

        Raises:
            StateStoreError: On a database error.
        """
        sql = self._q(f"SELECT {FEED_COLUMNS} FROM transactions WHERE ts_us >= ? AND seq <= ? ORDER BY seq")

        def read(conn: Any) -> tuple[list[tuple], int, int, int]:
            with self._snapshot(conn):  # one snapshot for the three reads
                last_seq, max_ts = conn.execute(
                    "SELECT COALESCE(MAX(seq), 0), MAX(ts_us) FROM transactions"
                ).fetchone()
                last_label = conn.execute("SELECT COALESCE(MAX(log_id), 0) FROM label_log").fetchone()[0]
                horizon = (max_ts or 0) - keep_days * 86_400 * US_PER_S
                rows = conn.execute(sql, (horizon, last_seq)).fetchall()
            return self._feed_rows(rows), int(horizon), int(last_seq), int(last_label)

        return self._read("history snapshot", read)

    def changes_since(self, seq: int, label_id: int) -> tuple[list[tuple], list[tuple]]:
        """History rows added after ``seq`` and labels received after ``label_id``.

        Returns:
            ``(rows, labels)``: rows as in :meth:`history_snapshot`; labels are
            ``(log_id, seq of the labelled transaction, is_fraud)``, for labelled transactions
            that are in the history.

        Raises:
            StateStoreError: On a database error.
        """

        def read(conn: Any) -> tuple[list[tuple], list[tuple]]:
            with self._batch(conn):
                rows_cur = conn.execute(
                    self._q(f"SELECT {FEED_COLUMNS} FROM transactions WHERE seq > ? ORDER BY seq"), (seq,)
                )
                labels_cur = conn.execute(
                    self._q(
                        "SELECT l.log_id, t.seq, l.is_fraud FROM label_log AS l "
                        "JOIN transactions AS t ON t.transaction_id = l.transaction_id "
                        "WHERE l.log_id > ? ORDER BY l.log_id"
                    ),
                    (label_id,),
                )
            return self._feed_rows(rows_cur.fetchall()), labels_cur.fetchall()

        return self._read("history changes", read)

    def prune(self, keep_days: int, logs_keep_days: int | None = None) -> dict[str, int]:
        """Delete old history rows and, with ``logs_keep_days``, old log rows.

        Args:
            keep_days: History rows older than this many days before the latest one go.
            logs_keep_days: Prediction-log rows whose transaction is older than this many days
                before the latest logged one go, and labels received before that cut-off.
                None keeps the logs.

        Returns:
            Rows deleted per table.

        Raises:
            StateStoreError: On a database error (nothing deleted).
        """
        q = self._q

        def delete(conn: Any) -> dict[str, int]:
            out = {"transactions": 0, "prediction_log": 0, "label_log": 0}
            max_ts = conn.execute("SELECT MAX(ts_us) FROM transactions").fetchone()[0]
            if max_ts is not None:
                out["transactions"] = conn.execute(
                    q("DELETE FROM transactions WHERE ts_us < ?"),
                    (max_ts - keep_days * 86_400 * US_PER_S,),
                ).rowcount
            if logs_keep_days is not None:
                latest = conn.execute("SELECT MAX(timestamp) FROM prediction_log").fetchone()[0]
                if latest is not None:
                    cut = self._log_cutoff(latest, logs_keep_days)
                    out["prediction_log"] = conn.execute(
                        q("DELETE FROM prediction_log WHERE timestamp < ?"), (cut,)
                    ).rowcount
                    out["label_log"] = conn.execute(
                        q("DELETE FROM label_log WHERE received_at < ?"), (cut,)
                    ).rowcount
            return out

        return dict(self._write("prune", delete))

    def raw_prediction_log(self, role: Role = "champion") -> RawLog:
        """The prediction log of one role as stored, in log order.

        Raises:
            StateStoreError: On a database error.
        """

        def read(conn: Any) -> RawLog:
            with self._snapshot(conn):  # one snapshot for both reads
                versions = {
                    (name, version): (json.loads(feats), json.loads(dtypes))
                    for name, version, feats, dtypes in conn.execute(_MODEL_VERSIONS)
                }
                rows = self._fetch_log(conn, role)
            return RawLog(self._decode_log(rows), versions)

        return self._read("prediction log read", read)

    def served_rows(self) -> list[tuple]:
        """``(transaction_id, timestamp, customer_key, terminal_key, amount)`` of scored rows.

        Raises:
            StateStoreError: On a database error.
        """
        rows = self._read(
            "prediction log read",
            lambda c: c.execute(
                "SELECT t.transaction_id, p.timestamp, t.customer_id, t.terminal_id, t.amount "
                "FROM prediction_log AS p JOIN transactions AS t "
                "ON t.transaction_id = p.transaction_id WHERE p.role = 'champion' ORDER BY p.log_id"
            ).fetchall(),
        )
        return self._decode_served(rows)

    def label_rows(self) -> list[tuple]:
        """``(transaction_id, is_fraud, received_at)`` of every label, in arrival order.

        Raises:
            StateStoreError: On a database error.
        """
        return self._read(
            "label log read",
            lambda c: c.execute(
                "SELECT transaction_id, is_fraud, received_at FROM label_log ORDER BY log_id"
            ).fetchall(),
        )
