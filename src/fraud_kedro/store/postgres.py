"""The PostgreSQL backend of the operational store: one database shared by every worker, replica
and job (``FRAUD_STATE_URL=postgresql://USER@HOST:PORT/DB``).

psycopg 3 with hand-written SQL (the request path: a few statements per request, sent in one
pipeline). One connection per thread and process, re-opened after a fork or an error, so a store
that went down answers 503 while it is down and recovers by itself.

Commit order: every write takes one transaction-level advisory lock first, so ``seq`` (history)
and ``log_id`` (labels) become visible in increasing order. The workers' history caches follow
the feed with ``seq > last seen``; without the lock a transaction that drew a smaller ``seq`` but
committed later would be skipped.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from fraud_kedro.features import HistoryWindow
from fraud_kedro.store.connect import SETTING, mask_url
from fraud_kedro.store.interface import TABLES
from fraud_kedro.store.keys import canonical_id
from fraud_kedro.store.migrate import HEAD, MIGRATION_LOCK, VERSION_TABLE_DDL, check_version
from fraud_kedro.store.schema import POSTGRES_SCHEMA, statements
from fraud_kedro.store.types import (
    DuplicateTransactionError,
    History,
    LoggedPrediction,
    ModelRef,
    RawLog,
    Role,
    StateStoreError,
    StoreConfigError,
    history_from_rows,
)

logger = logging.getLogger(__name__)

_US_PER_S = 1_000_000
WRITE_LOCK = 0x46525752  # "FRWR": pg_advisory_xact_lock key of every write
_LOG_INSERT = (
    "INSERT INTO prediction_log (role, transaction_id, timestamp, customer_id, terminal_id, "
    "amount, features, fraud_probability, is_fraud_predicted, model_name, model_version, "
    "scored_at, reasons) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_FEED = "seq, transaction_id, ts_us, customer_id, terminal_id, amount, is_fraud"


def _key(text: str) -> int | str:
    return canonical_id(text)


def _json_ids(values: Sequence[str | None]) -> list[Any]:
    """Ids stored as JSON literals, decoded (ints without ``json.loads`` per value: 1M rows)."""
    try:
        return [int(v) for v in values]  # all numbers: the common case
    except (TypeError, ValueError):
        return [None if v is None else json.loads(v) for v in values]


def _feed_rows(rows: list[tuple]) -> list[tuple]:
    """Feed rows with their keys decoded (TEXT -> canonical int or str)."""
    return [(s, t, ts, _key(c), _key(m), a, f) for s, t, ts, c, m, a, f in rows]


class PostgresStateStore:
    """The :class:`~fraud_kedro.store.interface.StateStore` on a PostgreSQL database.

    Args:
        url: A libpq URL (``postgresql://USER[:PASSWORD]@HOST:PORT/DB``).
        synchronous: Ignored (SQLite's setting; PostgreSQL commits durably).
        busy_timeout_ms: ``statement_timeout`` and ``lock_timeout`` of the service's statements
            (0: none, for batch readers).
        connect_timeout_s: How long a connection attempt may take.

    Raises:
        StoreConfigError: The server cannot be reached at start, or the schema version is wrong
            (the message names ``FRAUD_STATE_URL``, without the password).
    """

    def __init__(
        self,
        url: str,
        synchronous: str | None = None,
        busy_timeout_ms: int = 0,
        connect_timeout_s: int = 5,
    ) -> None:
        self.url = url
        self.description = mask_url(url)
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.connect_timeout_s = connect_timeout_s
        self._local = threading.local()
        # every thread's connection with its process, so close() closes them all (not a parent's)
        self._opened: list[tuple[int, psycopg.Connection]] = []
        self._opened_lock = threading.Lock()
        self._registered: set[tuple[str, str]] = set()
        try:
            conn = self._conn()
        except StateStoreError as exc:
            raise StoreConfigError(f"{SETTING}={self.description}: cannot connect: {exc}") from exc
        self._ensure_schema(conn)

    # -- connections -----------------------------------------------------------------------------

    def _conn(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid() and not conn.closed:
            return conn
        options = ""
        if self.busy_timeout_ms > 0:
            options = f"-c statement_timeout={self.busy_timeout_ms} -c lock_timeout={self.busy_timeout_ms}"
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=self.connect_timeout_s,
                options=options,
                application_name="fraud_kedro",
            )
        except psycopg.Error as exc:
            raise StateStoreError(_safe(exc, self.url)) from None
        self._local.conn = conn
        self._local.pid = os.getpid()
        with self._opened_lock:
            self._opened = [(pid, c) for pid, c in self._opened if not c.closed]
            self._opened.append((os.getpid(), conn))
        return conn

    def _reset(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and self._local.pid == os.getpid():
            try:
                conn.close()
            except psycopg.Error:  # pragma: no cover - closing a broken connection
                pass

    def close(self) -> None:
        """Close the connections of every thread of this process (a later call reconnects)."""
        self._reset()
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for pid, conn in opened:
            if conn.closed or pid != os.getpid():
                continue
            try:
                conn.close()
            except psycopg.Error:  # pragma: no cover - closing a broken connection
                pass

    def _fail(self, action: str, exc: Exception) -> StateStoreError:
        self._reset()
        message = _safe(exc, self.url)
        logger.error("state store %s: %s failed: %s", self.description, action, message)
        return StateStoreError(f"state store unavailable ({action}): {message}")

    def _read(self, action: str, fn: Callable[[psycopg.Connection], Any]) -> Any:
        try:
            return fn(self._conn())
        except StateStoreError:
            raise
        except psycopg.Error as exc:
            raise self._fail(action, exc) from None

    def _write(self, action: str, fn: Callable[[psycopg.Connection], Any]) -> Any:
        """Run ``fn(conn)`` in one transaction holding the writers' advisory lock."""
        try:
            conn = self._conn()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                return fn(conn)
        except (StateStoreError, DuplicateTransactionError):
            raise
        except psycopg.errors.UniqueViolation:
            raise
        except psycopg.Error as exc:
            raise self._fail(action, exc) from None

    # -- schema ----------------------------------------------------------------------------------

    @staticmethod
    def _version(conn: psycopg.Connection) -> str | None:
        exists = conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0]
        if exists is None:
            if conn.execute("SELECT to_regclass('transactions')").fetchone()[0] is not None:
                raise StoreConfigError(
                    "the database has a transactions table but no schema version: not a "
                    "fraud_kedro store (run `make migrate` to adopt it)"
                )
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])

    def _ensure_schema(self, conn: psycopg.Connection) -> None:
        """Use the database at this release's version; create the schema once when it is empty."""
        try:
            if check_version(self._version(conn), self.url):
                return
            # a session lock taken before the transaction starts: the transaction then sees
            # (catalog caches included) whatever the instance that held the lock committed
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                with conn.transaction():  # transactional DDL: all or nothing, once
                    if not check_version(self._version(conn), self.url):
                        for statement in statements(POSTGRES_SCHEMA):
                            conn.execute(statement)
                        conn.execute(VERSION_TABLE_DDL)
                        conn.execute("INSERT INTO alembic_version (version_num) VALUES (%s)", (HEAD,))
                        logger.info("created the store schema %s in %s", HEAD, self.description)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        except StoreConfigError as exc:
            self._reset()
            if SETTING in str(exc):
                raise
            raise StoreConfigError(f"{SETTING}={self.description}: {exc}") from None
        except psycopg.Error as exc:
            self._reset()
            raise StoreConfigError(
                f"{SETTING}={self.description}: cannot prepare the schema: {_safe(exc, self.url)}"
            ) from None

    # -- reads -----------------------------------------------------------------------------------

    def history(
        self,
        customer_keys: Iterable[int | str],
        terminal_keys: Iterable[int | str],
        window: HistoryWindow,
    ) -> History:
        """Earlier transactions of these customers and terminals within ``window``, each once.

        Raises:
            StateStoreError: On a database error.
        """
        customers = [str(k) for k in dict.fromkeys(customer_keys)]
        terminals = [str(k) for k in dict.fromkeys(terminal_keys)]
        cols = "transaction_id, ts_us, customer_id, terminal_id, amount, is_fraud"
        sql = (
            f"SELECT {cols} FROM transactions WHERE customer_id = ANY(%s) AND ts_us >= %s "
            f"AND ts_us < %s UNION SELECT {cols} FROM transactions WHERE terminal_id = ANY(%s) "
            "AND ts_us >= %s AND ts_us < %s"
        )
        args = (
            customers,
            window.customer_from,
            window.customer_to,
            terminals,
            window.terminal_from,
            window.terminal_to,
        )
        rows = self._read("history read", lambda c: c.execute(sql, args).fetchall())
        return history_from_rows(
            [(t, ts, _key(cu), _key(te), a, f) for t, ts, cu, te, a, f in rows], dedupe=False
        )

    def logged_predictions(self, ids: Sequence[int]) -> dict[int, LoggedPrediction]:
        """The logged champion predictions of these ids (the latest per id).

        Raises:
            StateStoreError: On a database error.
        """
        sql = (
            "SELECT transaction_id, timestamp, customer_id, terminal_id, amount, "
            "fraud_probability, is_fraud_predicted, model_name, model_version FROM prediction_log "
            "WHERE role = 'champion' AND transaction_id = ANY(%s) ORDER BY log_id"
        )
        rows = self._read("prediction log read", lambda c: c.execute(sql, (list(ids),)).fetchall())
        out: dict[int, LoggedPrediction] = {}
        for tx, ts, customer, terminal, amount, proba, decision, name, version in rows:
            out[tx] = LoggedPrediction(
                tx,
                ts.isoformat(timespec="microseconds"),
                json.loads(customer),
                json.loads(terminal),
                amount,
                proba,
                bool(decision),
                name,
                version,
            )
        return out

    def get_meta(self, key: str) -> str | None:
        """A value of the ``meta`` table, or None."""
        row = self._read(
            "meta read",
            lambda c: c.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone(),
        )
        return None if row is None else row[0]

    def count(self, table: str) -> int:
        """Number of rows of a table of the store."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table}")
        return int(self._read("count", lambda c: c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]))

    def is_seeded(self) -> bool:
        """Whether the history was seeded or already holds transactions."""
        return bool(
            self._read(
                "history read",
                lambda c: c.execute(
                    "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'seeded_at') "
                    "OR EXISTS (SELECT 1 FROM transactions)"
                ).fetchone()[0],
            )
        )

    # -- change feed -----------------------------------------------------------------------------

    def history_snapshot(self, keep_days: int) -> tuple[list[tuple], int, int, int]:
        """Rows of the last ``keep_days`` days before the latest one, in ``seq`` order.

        Raises:
            StateStoreError: On a database error.
        """

        def read(conn: psycopg.Connection) -> tuple[list[tuple], int, int, int]:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                last_seq, max_ts = conn.execute(
                    "SELECT COALESCE(MAX(seq), 0), MAX(ts_us) FROM transactions"
                ).fetchone()
                last_label = conn.execute("SELECT COALESCE(MAX(log_id), 0) FROM label_log").fetchone()[0]
                horizon = (max_ts or 0) - keep_days * 86_400 * _US_PER_S
                rows = conn.execute(
                    f"SELECT {_FEED} FROM transactions WHERE ts_us >= %s AND seq <= %s ORDER BY seq",
                    (horizon, last_seq),
                ).fetchall()
            return _feed_rows(rows), int(horizon), int(last_seq), int(last_label)

        return self._read("history snapshot", read)

    def changes_since(self, seq: int, label_id: int) -> tuple[list[tuple], list[tuple]]:
        """History rows committed after ``seq`` and labels received after ``label_id``.

        Raises:
            StateStoreError: On a database error.
        """

        def read(conn: psycopg.Connection) -> tuple[list[tuple], list[tuple]]:
            with conn.pipeline():
                rows_cur = conn.execute(
                    f"SELECT {_FEED} FROM transactions WHERE seq > %s ORDER BY seq", (seq,)
                )
                labels_cur = conn.execute(
                    "SELECT l.log_id, t.seq, l.is_fraud FROM label_log AS l "
                    "JOIN transactions AS t ON t.transaction_id = l.transaction_id "
                    "WHERE l.log_id > %s ORDER BY l.log_id",
                    (label_id,),
                )
            return _feed_rows(rows_cur.fetchall()), labels_cur.fetchall()

        return self._read("history changes", read)

    # -- writes ----------------------------------------------------------------------------------

    def _register_model(self, conn: psycopg.Connection, model: ModelRef, now: datetime) -> None:
        if (model.name, model.version) in self._registered:
            return
        conn.execute(
            "INSERT INTO model_versions VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                model.name,
                model.version,
                model.uri,
                json.dumps(list(model.features)),
                json.dumps(list(model.feature_dtypes)),
                now,
            ),
        )

    @staticmethod
    def _log_rows(
        rows: Sequence[Any],
        features: np.ndarray,
        probabilities: np.ndarray,
        decisions: np.ndarray,
        model: ModelRef,
        scored_at: datetime,
        role: Role,
        reasons: Sequence[Any] | None = None,
    ) -> list[tuple]:
        blob = np.ascontiguousarray(features, dtype="<f8")
        return [
            (
                role,
                tx.transaction_id,
                tx.timestamp,
                json.dumps(tx.customer_id),
                json.dumps(tx.terminal_id),
                tx.amount,
                blob[i].tobytes(),
                float(probabilities[i]),
                bool(decisions[i]),
                model.name,
                model.version,
                scored_at,
                json.dumps(reasons[i]) if reasons is not None else None,
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
        reasons: Sequence[Any] | None = None,
    ) -> None:
        """Add scored transactions to the history and their predictions to the log, atomically
        (each score's reasons as JSON when given).

        Raises:
            DuplicateTransactionError: An id is already in the history (nothing written).
            StateStoreError: The store cannot be written (nothing written).
        """
        history_rows = [
            (tx.transaction_id, tx.ts_us, str(tx.customer_key), str(tx.terminal_key), tx.amount)
            for tx in rows
        ]
        log_rows = self._log_rows(
            rows, features, probabilities, decisions, model, scored_at, "champion", reasons
        )

        def write(conn: psycopg.Connection) -> None:
            with conn.pipeline(), conn.cursor() as cur:
                self._register_model(conn, model, scored_at)
                cur.executemany(
                    "INSERT INTO transactions (transaction_id, ts_us, customer_id, terminal_id, "
                    "amount, source) VALUES (%s, %s, %s, %s, %s, 'scored')",
                    history_rows,
                )
                cur.executemany(_LOG_INSERT, log_rows)

        try:
            self._write("prediction log write", write)
        except psycopg.errors.UniqueViolation:
            known = self._read(
                "history read",
                lambda c: [
                    r[0]
                    for r in c.execute(
                        "SELECT transaction_id FROM transactions WHERE transaction_id = ANY(%s)",
                        ([tx.transaction_id for tx in rows],),
                    )
                ],
            )
            raise DuplicateTransactionError(known) from None
        self._registered.add((model.name, model.version))

    def record_shadow_scores(
        self,
        rows: Sequence[Any],
        features: np.ndarray,
        probabilities: np.ndarray,
        decisions: np.ndarray,
        model: ModelRef,
        scored_at: datetime,
    ) -> None:
        """Log shadow predictions (role ``shadow``; the history is not touched)."""
        log_rows = self._log_rows(rows, features, probabilities, decisions, model, scored_at, "shadow")

        def write(conn: psycopg.Connection) -> None:
            with conn.pipeline(), conn.cursor() as cur:
                self._register_model(conn, model, scored_at)
                cur.executemany(_LOG_INSERT, log_rows)

        self._write("shadow log write", write)
        self._registered.add((model.name, model.version))

    def record_labels(self, labels: Sequence[Any], received_at: datetime) -> int:
        """Log labels and set ``is_fraud`` on the matching history rows; returns the matches."""

        def write(conn: psycopg.Connection) -> int:
            ids = [lab.transaction_id for lab in labels]
            values = [int(lab.is_fraud) for lab in labels]
            conn.execute(
                "INSERT INTO label_log (transaction_id, is_fraud, received_at) "
                "SELECT i, f, %s FROM unnest(%s::bigint[], %s::smallint[]) AS u(i, f)",
                (received_at, ids, values),
            )
            # the last label of an id wins, as with one UPDATE per label in arrival order
            cur = conn.execute(
                "UPDATE transactions AS t SET is_fraud = u.f FROM (SELECT DISTINCT ON (i) i, f "
                "FROM unnest(%s::bigint[], %s::smallint[]) WITH ORDINALITY AS u(i, f, n) "
                "ORDER BY i, n DESC) AS u WHERE t.transaction_id = u.i",
                (ids, values),
            )
            matched = cur.rowcount
            if len(set(ids)) < len(ids):  # count per label, as the SQLite backend does
                known = {
                    r[0]
                    for r in conn.execute(
                        "SELECT transaction_id FROM transactions WHERE transaction_id = ANY(%s)",
                        (ids,),
                    )
                }
                matched = sum(1 for i in ids if i in known)
            return matched

        return int(self._write("label log write", write))

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the ``meta`` table."""
        self._write(
            "meta write",
            lambda c: c.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            ),
        )

    def check_writable(self) -> None:
        """Raise :class:`StateStoreError` unless a write succeeds now (a heartbeat row)."""
        self.set_meta(f"heartbeat:{os.uname().nodename}", str(os.getpid()))

    def insert_seed(self, rows: list[tuple], only_if_empty: bool = False) -> int:
        """Insert seed history rows (known ids skipped) and mark the store seeded.

        Raises:
            StateStoreError: On a database error (nothing written).
        """

        def write(conn: psycopg.Connection) -> int:
            if (
                only_if_empty
                and conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'seeded_at') "
                    "OR EXISTS (SELECT 1 FROM transactions)"
                ).fetchone()[0]
            ):
                return 0
            before = conn.execute("SELECT COUNT(*) FROM transactions").fetchone()[0]
            encoded = [(t, ts, str(c), str(m), a, f) for t, ts, c, m, a, f in rows]
            with conn.cursor() as cur:
                if before == 0:  # an empty history (first start): COPY, no conflicts possible
                    with cur.copy(
                        "COPY transactions (transaction_id, ts_us, customer_id, terminal_id, "
                        "amount, is_fraud, source) FROM STDIN"
                    ) as copy:
                        first: dict[int, tuple] = {}
                        for row in encoded:  # a repeated id: the first row, as SQLite keeps
                            first.setdefault(row[0], row)
                        for row in first.values():
                            copy.write_row((*row, "seed"))
                else:
                    cur.executemany(
                        "INSERT INTO transactions (transaction_id, ts_us, customer_id, "
                        "terminal_id, amount, is_fraud, source) VALUES (%s, %s, %s, %s, %s, %s, "
                        "'seed') ON CONFLICT (transaction_id) DO NOTHING",
                        encoded,
                    )
            after = conn.execute("SELECT COUNT(*) FROM transactions").fetchone()[0]
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('seeded_at', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds"),),
            )
            return int(after - before)

        return int(self._write("seed", write))

    def prune(self, keep_days: int, logs_keep_days: int | None = None) -> dict[str, int]:
        """Delete old history rows and, with ``logs_keep_days``, old log rows (see SQLite's)."""

        def delete(conn: psycopg.Connection) -> dict[str, int]:
            out = {"transactions": 0, "prediction_log": 0, "label_log": 0}
            max_ts = conn.execute("SELECT MAX(ts_us) FROM transactions").fetchone()[0]
            if max_ts is not None:
                out["transactions"] = conn.execute(
                    "DELETE FROM transactions WHERE ts_us < %s",
                    (max_ts - keep_days * 86_400 * _US_PER_S,),
                ).rowcount
            if logs_keep_days is not None:
                latest = conn.execute("SELECT MAX(timestamp) FROM prediction_log").fetchone()[0]
                if latest is not None:
                    cut = latest - timedelta(days=logs_keep_days)
                    out["prediction_log"] = conn.execute(
                        "DELETE FROM prediction_log WHERE timestamp < %s", (cut,)
                    ).rowcount
                    out["label_log"] = conn.execute(
                        "DELETE FROM label_log WHERE received_at < %s", (cut,)
                    ).rowcount
            return out

        return dict(self._write("prune", delete))

    # -- readers ---------------------------------------------------------------------------------

    def raw_prediction_log(self, role: Role = "champion") -> RawLog:
        """The prediction log of one role as stored, in log order (binary COPY, 1M rows ~ s).

        Raises:
            StateStoreError: On a database error.
        """

        def read(conn: psycopg.Connection) -> RawLog:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                versions = {
                    (name, version): (json.loads(feats), json.loads(dtypes))
                    for name, version, feats, dtypes in conn.execute(
                        "SELECT model_name, model_version, features, feature_dtypes FROM model_versions"
                    )
                }
                with conn.cursor(binary=True) as cur:
                    cur.execute(
                        "SELECT transaction_id, timestamp, customer_id, terminal_id, features, "
                        "fraud_probability, is_fraud_predicted, model_version, scored_at, "
                        "model_name FROM prediction_log WHERE role = %s ORDER BY log_id",
                        (role,),
                    )
                    rows = cur.fetchall()
            if not rows:
                return RawLog([], versions)
            cols = list(zip(*rows, strict=True))
            cols[2], cols[3] = _json_ids(cols[2]), _json_ids(cols[3])
            return RawLog(list(zip(*cols, strict=True)), versions)

        return self._read("prediction log read", read)

    def served_rows(self) -> list[tuple]:
        """``(transaction_id, timestamp, customer_key, terminal_key, amount)`` of scored rows."""
        rows = self._read(
            "prediction log read",
            lambda c: c.execute(
                "SELECT t.transaction_id, p.timestamp, t.customer_id, t.terminal_id, t.amount "
                "FROM prediction_log AS p JOIN transactions AS t "
                "ON t.transaction_id = p.transaction_id WHERE p.role = 'champion' ORDER BY p.log_id"
            ).fetchall(),
        )
        return [(t, ts, _key(c), _key(m), a) for t, ts, c, m, a in rows]

    def label_rows(self) -> list[tuple]:
        """``(transaction_id, is_fraud, received_at)`` of every label, in arrival order."""
        return self._read(
            "label log read",
            lambda c: c.execute(
                "SELECT transaction_id, is_fraud, received_at FROM label_log ORDER BY log_id"
            ).fetchall(),
        )


def _safe(exc: BaseException, url: str) -> str:
    """An error message without the URL's password (libpq may echo parts of the conninfo)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    try:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return mask_url(text)
