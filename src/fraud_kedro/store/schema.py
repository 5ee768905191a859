"""The tables of the operational store (documented in ``docs/serving.md``).

* ``transactions``: the history the online features are computed from (seeded from the training
  data, then every scored transaction; ``is_fraud`` is set by ``POST /feedback``). ``seq`` is the
  commit order, which the workers' history caches follow.
* ``prediction_log``: one row per scored transaction and model ``role`` (``champion``, or
  ``shadow`` for the challenger scored on the same traffic); features as a float64 blob in the
  order of ``model_versions.features``.
* ``label_log``: every label received.
* ``model_versions``: the feature list of each model version seen; ``meta``: key/value settings.
"""

from __future__ import annotations

import sqlite3

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- customer_id/terminal_id: canonical ids (validation.canonical_id), ints or text; no type
-- affinity, so that 17 stays an integer (and "A17" text)
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
CREATE INDEX IF NOT EXISTS ix_transactions_ts ON transactions (ts_us);
CREATE TABLE IF NOT EXISTS model_versions (
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_uri TEXT NOT NULL,
    features TEXT NOT NULL,
    feature_dtypes TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (model_name, model_version)
);
-- the log keeps customer_id/terminal_id as sent (no type affinity: 17 stays 17, "17" stays "17")
CREATE TABLE IF NOT EXISTS prediction_log (
    log_id INTEGER PRIMARY KEY AUTOINCREMENT,
    role TEXT NOT NULL DEFAULT 'champion',
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
CREATE TABLE IF NOT EXISTS label_log (
    log_id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL,
    is_fraud INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
"""

_LOG_COLUMNS = (
    "transaction_id, timestamp, customer_id, terminal_id, amount, features, fraud_probability, "
    "is_fraud_predicted, model_name, model_version, scored_at"
)


def _legacy_state(conn: sqlite3.Connection) -> tuple[bool, bool]:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(prediction_log)")}
    shadow = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'shadow_prediction_log'"
    ).fetchone()
    return bool(columns) and "role" not in columns, shadow is not None


def upgrade_legacy_sqlite(conn: sqlite3.Connection) -> bool:
    """Fold a pre-role database (``prediction_log`` + ``shadow_prediction_log``) into one log.

    Safe when several workers open the same old file at once (checked again under the write lock).

    Args:
        conn: A connection outside any transaction.

    Returns:
        Whether anything was changed.
    """
    if not any(_legacy_state(conn)):
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        no_role, shadow = _legacy_state(conn)
        if no_role:
            conn.execute(
                "ALTER TABLE prediction_log ADD COLUMN role TEXT NOT NULL DEFAULT 'champion'"
            )
        if shadow:
            conn.execute(
                f"INSERT INTO prediction_log (role, {_LOG_COLUMNS}) "
                f"SELECT 'shadow', {_LOG_COLUMNS} FROM shadow_prediction_log ORDER BY log_id"
            )
            conn.execute("DROP TABLE shadow_prediction_log")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return no_role or shadow
