"""The SQLite backend of the operational store: one file in WAL mode shared by processes and threads.

The embedded default (``sqlite:///PATH`` or ``FRAUD_STATE_DB``): the gunicorn workers of one
machine share the file (one writer at a time, readers never blocked). Several machines or replicas
need the PostgreSQL backend.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fraud_kedro.features import HistoryWindow
from fraud_kedro.store.migrate import HEAD, VERSION_TABLE_DDL, check_version
from fraud_kedro.store.schema import SQLITE_SCHEMA, fold_legacy_sqlite, statements
from fraud_kedro.store.sql_base import HISTORY_COLUMNS, SEEDED_OR_NOT_EMPTY, SqlStateStore, iso
from fraud_kedro.store.types import (
    DuplicateTransactionError,
    History,
    LoggedPrediction,
    StateStoreError,
    history_from_rows,
)

logger = logging.getLogger(__name__)

_IN_CHUNK = 500


def _select_in(
    conn: sqlite3.Connection, head: str, keys: Sequence[Any], tail: str = "", extra: tuple = ()
) -> Iterator[tuple]:
    """The rows of ``<head> (?, ...)<tail>`` run on each chunk of ``_IN_CHUNK`` keys, the
    ``extra`` parameters after the chunk's. Only ``?`` placeholders are formatted into the SQL
    (``head`` and ``tail`` are the callers' constants); the keys are bound parameters."""
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = list(keys[start : start + _IN_CHUNK])
        yield from conn.execute(f"{head} ({','.join('?' * len(chunk))}){tail}", (*chunk, *extra))


__all__ = ["SqliteStateStore", "iso"]


class _FileLock:
    """An exclusive ``flock`` held until :meth:`release`."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        """Release and close."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)


class SqliteStateStore(SqlStateStore):
    """The :class:`~fraud_kedro.store.interface.StateStore` on one SQLite file in WAL mode.

    One connection per thread and process (re-opened after a fork or an error).

    Args:
        path: The database file (its folder is created).
        synchronous: The ``synchronous`` pragma: NORMAL (crash-safe) or FULL (power-loss-safe).
        busy_timeout_ms: How long to wait for the write lock before failing.
    """

    DB_ERROR = sqlite3.Error
    DUPLICATE_ERROR = sqlite3.IntegrityError
    MODEL_INSERT = "INSERT OR IGNORE INTO model_versions VALUES (?, ?, ?, ?, ?, ?)"

    def __init__(
        self, path: str | os.PathLike[str], synchronous: str = "NORMAL", busy_timeout_ms: int = 5000
    ) -> None:
        super().__init__(f"sqlite:///{path}")
        self.path = Path(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self._thread_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # the first connection switches a new file to WAL, which SQLite answers with "database
            # is locked" (no busy wait) when another instance opens the file at that moment: open
            # under the writers' lock, as every write is
            self._writer_lock()
            try:
                self._ensure_schema(self._conn())
            finally:
                self._writer_unlock()
        except (sqlite3.Error, OSError) as exc:
            self._reset()
            raise StateStoreError(f"state store {self.path} cannot be opened: {exc}") from exc

    # -- schema --------------------------------------------------------------------------------

    @staticmethod
    def _version(conn: sqlite3.Connection) -> str | None:
        """The schema version; None for an empty (or pre-Alembic) file."""
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone():
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        """Use the file at this release's schema version, creating it when empty (or pre-Alembic).

        Called under the writers' lock (``__init__``).

        Raises:
            StoreConfigError: An older (``make migrate``) or unknown schema version.
        """
        if check_version(self._version(conn), self.description):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not check_version(self._version(conn), self.description):
                for statement in statements(SQLITE_SCHEMA):
                    conn.execute(statement)
                fold_legacy_sqlite(lambda sql: conn.execute(sql).fetchall())
                conn.execute(VERSION_TABLE_DDL)
                conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (HEAD,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def file_lock(path: str | os.PathLike[str]) -> _FileLock:
        """Take the writers' lock of the SQLite file at ``path`` (blocking; for migrations)."""
        return _FileLock(f"{path}.writelock")

    # -- connections -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA temp_store = MEMORY")
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        self._reset()

    @contextmanager
    def _snapshot(self, conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _stamp(self, dt: datetime) -> str:
        return iso(dt)

    @staticmethod
    def _logged_tx(tx: Any) -> tuple[Any, Any, Any]:
        return iso(tx.timestamp), tx.customer_id, tx.terminal_id

    @staticmethod
    def _flag(decision: Any) -> int:
        return int(bool(decision))

    def _log_cutoff(self, latest: str, days: int) -> str:
        return iso(datetime.fromisoformat(latest) - timedelta(days=days))

    # -- reads -------------------------------------------------------------------------------

    def _history(self, customers: list[Any], terminals: list[Any], window: HistoryWindow) -> History:
        """The rows of :meth:`history`: one ``UNION`` query, or ``IN`` chunks of 500 keys."""
        cols = HISTORY_COLUMNS
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
                return history_from_rows(rows, dedupe=False)
            for column, keys, lo, hi in (
                ("customer_id", customers, window.customer_from, window.customer_to),
                ("terminal_id", terminals, window.terminal_from, window.terminal_to),
            ):
                head = f"SELECT {cols} FROM transactions WHERE {column} IN"
                rows.extend(_select_in(conn, head, keys, " AND ts_us >= ? AND ts_us < ?", (lo, hi)))
        except sqlite3.Error as exc:
            raise self._fail("history read", exc) from exc
        return history_from_rows(rows, dedupe=True)

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
            head = (
                "SELECT transaction_id, timestamp, customer_id, terminal_id, amount, "
                "fraud_probability, is_fraud_predicted, model_name, model_version "
                "FROM prediction_log WHERE role = 'champion' AND transaction_id IN"
            )
            for row in _select_in(conn, head, ids, " ORDER BY log_id"):
                out[row[0]] = LoggedPrediction(*row[:6], bool(row[6]), *row[7:])
        except sqlite3.Error as exc:
            raise self._fail("prediction log read", exc) from exc
        return out

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

    def _known_ids(self, ids: Sequence[int]) -> list[int]:
        known: list[int] = []
        try:
            conn = self._conn()
            head = "SELECT transaction_id FROM transactions WHERE transaction_id IN"
            known.extend(r[0] for r in _select_in(conn, head, ids))
        except sqlite3.Error as exc:
            raise self._fail("history read", exc) from exc
        return known

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
        now = iso(received_at)

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

    def insert_seed(self, rows: list[tuple], only_if_empty: bool = False) -> int:
        """Insert seed history rows (known ids skipped) and mark the store seeded.

        Args:
            rows: ``(transaction_id, ts_us, customer, terminal, amount, is_fraud)``.
            only_if_empty: Do nothing when the store is already seeded or holds transactions
                (checked under the write lock: several workers seed once).

        Returns:
            The number of rows inserted.

        Raises:
            StateStoreError: On a database error (nothing written).
        """

        def write(conn: sqlite3.Connection) -> int:
            if only_if_empty and conn.execute(SEEDED_OR_NOT_EMPTY).fetchone()[0]:
                return 0
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO transactions (transaction_id, ts_us, customer_id, "
                "terminal_id, amount, is_fraud, source) VALUES (?, ?, ?, ?, ?, ?, 'seed')",
                rows,
            )
            inserted = conn.total_changes - before
            self._mark_seeded(conn)
            return inserted

        return int(self._write("seed", write))
