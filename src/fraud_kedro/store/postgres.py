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
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg

from fraud_kedro.features import HistoryWindow
from fraud_kedro.store.connect import SETTING, mask_url
from fraud_kedro.store.keys import canonical_id
from fraud_kedro.store.migrate import HEAD, MIGRATION_LOCK, VERSION_TABLE_DDL, check_version
from fraud_kedro.store.schema import POSTGRES_SCHEMA, statements
from fraud_kedro.store.sql_base import HISTORY_COLUMNS, SEEDED_OR_NOT_EMPTY, SqlStateStore
from fraud_kedro.store.types import (
    DuplicateTransactionError,
    History,
    LoggedPrediction,
    Role,
    StateStoreError,
    StoreConfigError,
    history_from_rows,
)

logger = logging.getLogger(__name__)

WRITE_LOCK = 0x46525752  # "FRWR": pg_advisory_xact_lock key of every write


def _key(text: str) -> int | str:
    return canonical_id(text)


def _json_ids(values: Sequence[str | None]) -> list[Any]:
    """Ids stored as JSON literals, decoded (ints without ``json.loads`` per value: 1M rows)."""
    try:
        return [int(v) for v in values]  # all numbers: the common case
    except (TypeError, ValueError):
        return [None if v is None else json.loads(v) for v in values]


class PostgresStateStore(SqlStateStore):
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

    PARAM = "%s"
    DB_ERROR = psycopg.Error
    DUPLICATE_ERROR = psycopg.errors.UniqueViolation
    MODEL_INSERT = "INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
    HIDE_CAUSE = True

    def __init__(
        self,
        url: str,
        synchronous: str | None = None,
        busy_timeout_ms: int = 0,
        connect_timeout_s: int = 5,
    ) -> None:
        super().__init__(mask_url(url))
        self.url = url
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.connect_timeout_s = connect_timeout_s
        # every thread's connection with its process, so close() closes them all (not a parent's)
        self._opened: list[tuple[int, psycopg.Connection]] = []
        self._opened_lock = threading.Lock()
        try:
            conn = self._conn()
        except StateStoreError as exc:
            raise StoreConfigError(f"{SETTING}={self.description}: cannot connect: {exc}") from exc
        self._ensure_schema(conn)
        self._ensure_statistics(conn)

    def _ensure_statistics(self, conn: psycopg.Connection, force: bool = False) -> None:
        """``ANALYZE`` the history when it was never analyzed (a server with autovacuum off, a
        restore) or when ``force`` (just seeded): without statistics the request path's feed query
        (``seq > ?``) is planned as a scan of the whole table (measured: 15 ms a request after
        seeding 370k rows). No write lock is taken, and a failure only costs speed: it is logged,
        not raised."""
        try:
            if not force:
                row = conn.execute(
                    "SELECT n_live_tup > 0 AND last_analyze IS NULL AND last_autoanalyze IS NULL "
                    "FROM pg_stat_user_tables WHERE relname = 'transactions' "
                    "AND schemaname = current_schema()"
                ).fetchone()
                if not (row and row[0]):
                    return
            conn.execute("ANALYZE transactions")
            logger.info("analyzed the history of %s (planner statistics)", self.description)
        except psycopg.Error as exc:
            logger.warning(
                "could not update the planner statistics of %s: %s", self.description, _safe(exc, self.url)
            )

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

    @contextmanager
    def _snapshot(self, conn: psycopg.Connection) -> Iterator[None]:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield

    def _batch(self, conn: psycopg.Connection) -> AbstractContextManager[Any]:
        return conn.pipeline()

    def _error_text(self, exc: Exception) -> str:
        return _safe(exc, self.url)

    @staticmethod
    def _logged_tx(tx: Any) -> tuple[Any, Any, Any]:
        return tx.timestamp, json.dumps(tx.customer_id), json.dumps(tx.terminal_id)

    _key_in = staticmethod(str)

    def _feed_rows(self, rows: list[tuple]) -> list[tuple]:
        """Feed rows with their keys decoded (TEXT -> canonical int or str)."""
        return [(s, t, ts, _key(c), _key(m), a, f) for s, t, ts, c, m, a, f in rows]

    def _decode_served(self, rows: list[tuple]) -> list[tuple]:
        return [(t, ts, _key(c), _key(m), a) for t, ts, c, m, a in rows]

    def _log_cutoff(self, latest: datetime, days: int) -> datetime:
        return latest - timedelta(days=days)

    def _fetch_log(self, conn: psycopg.Connection, role: Role) -> list[tuple]:
        """The log rows through a binary cursor (1M rows ~ s)."""
        with conn.cursor(binary=True) as cur:
            return super()._fetch_log(cur, role)

    def _decode_log(self, rows: list[tuple]) -> list[tuple]:
        if not rows:
            return []
        cols = list(zip(*rows, strict=True))
        cols[2], cols[3] = _json_ids(cols[2]), _json_ids(cols[3])
        return list(zip(*cols, strict=True))

    def _known_ids(self, ids: Sequence[int]) -> list[int]:
        return self._read(
            "history read",
            lambda c: [
                r[0]
                for r in c.execute(
                    "SELECT transaction_id FROM transactions WHERE transaction_id = ANY(%s)",
                    (list(ids),),
                )
            ],
        )

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

    def _history(self, customers: list[Any], terminals: list[Any], window: HistoryWindow) -> History:
        """The rows of :meth:`history`: one ``UNION`` of two ``ANY`` queries (keys as TEXT)."""
        customers = [str(k) for k in customers]
        terminals = [str(k) for k in terminals]
        cols = HISTORY_COLUMNS
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

    def check_writable(self) -> None:
        """Raise :class:`StateStoreError` unless a write succeeds now (a heartbeat row)."""
        self.set_meta(f"heartbeat:{os.uname().nodename}", str(os.getpid()))

    def insert_seed(self, rows: list[tuple], only_if_empty: bool = False) -> int:
        """Insert seed history rows (known ids skipped) and mark the store seeded.

        Raises:
            StateStoreError: On a database error (nothing written).
        """

        def write(conn: psycopg.Connection) -> int:
            if only_if_empty and conn.execute(SEEDED_OR_NOT_EMPTY).fetchone()[0]:
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
            self._mark_seeded(conn)
            return int(after - before)

        inserted = int(self._write("seed", write))
        if inserted:  # planner statistics now, not at autovacuum's next pass (if it runs at all)
            self._ensure_statistics(self._conn(), force=True)
        return inserted

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
