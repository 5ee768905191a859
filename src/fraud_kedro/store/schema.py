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

from collections.abc import Callable


def _history_indexes_and_models(time_type: str) -> str:
    """The DDL both backends share: the history's indexes and ``model_versions``."""
    return f"""CREATE INDEX IF NOT EXISTS ix_transactions_customer ON transactions (customer_id, ts_us);
CREATE INDEX IF NOT EXISTS ix_transactions_terminal ON transactions (terminal_id, ts_us);
CREATE INDEX IF NOT EXISTS ix_transactions_ts ON transactions (ts_us);
CREATE TABLE IF NOT EXISTS model_versions (
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_uri TEXT NOT NULL,
    features TEXT NOT NULL,
    feature_dtypes TEXT NOT NULL,
    first_seen {time_type} NOT NULL,
    PRIMARY KEY (model_name, model_version)
);
"""


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
""" + _history_indexes_and_models("TEXT") + """\
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
    scored_at TEXT NOT NULL,
    -- the score's reasons as JSON (POST /score?explain=true), else NULL (revision 0002)
    reasons TEXT
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


def _legacy_state(query: Callable[[str], list]) -> tuple[bool, bool]:
    columns = {row[1] for row in query("PRAGMA table_info(prediction_log)")}
    shadow = query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'shadow_prediction_log'")
    return bool(columns) and "role" not in columns, bool(shadow)


def is_legacy_sqlite(query: Callable[[str], list]) -> bool:
    """Whether a SQLite file has the pre-role logs (``shadow_prediction_log``, no ``role``)."""
    return any(_legacy_state(query))


def fold_legacy_sqlite(query: Callable[[str], list]) -> bool:
    """Fold a pre-role database (``prediction_log`` + ``shadow_prediction_log``) into one log.

    Runs inside the caller's write transaction (or lock), so that several workers opening the
    same old file at once fold it once.

    Args:
        query: Runs one statement, returns its rows (a list, empty for DDL).

    Returns:
        Whether anything was changed.
    """
    no_role, shadow = _legacy_state(query)
    if no_role:
        query("ALTER TABLE prediction_log ADD COLUMN role TEXT NOT NULL DEFAULT 'champion'")
    if shadow:
        query(
            f"INSERT INTO prediction_log (role, {_LOG_COLUMNS}) "
            f"SELECT 'shadow', {_LOG_COLUMNS} FROM shadow_prediction_log ORDER BY log_id"
        )
        query("DROP TABLE shadow_prediction_log")
    columns = {row[1] for row in query("PRAGMA table_info(prediction_log)")}
    no_reasons = bool(columns) and "reasons" not in columns  # a file older than revision 0002
    if no_reasons:
        query("ALTER TABLE prediction_log ADD COLUMN reasons TEXT")
    return no_role or shadow or no_reasons


# PostgreSQL: ids as TEXT holding str(canonical key) (keys.canonical_id reads them back); the
# log's ids "as sent" as a JSON literal (17 and "17" stay apart); times as timestamp (UTC, naive)
POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id BIGINT NOT NULL UNIQUE,
    ts_us BIGINT NOT NULL,
    customer_id TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    is_fraud SMALLINT,
    source TEXT NOT NULL
);
""" + _history_indexes_and_models("TIMESTAMP") + """\
CREATE TABLE IF NOT EXISTS prediction_log (
    log_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    role TEXT NOT NULL DEFAULT 'champion' CHECK (role IN ('champion', 'shadow')),
    transaction_id BIGINT NOT NULL,
    timestamp TIMESTAMP NOT NULL,
    customer_id TEXT,
    terminal_id TEXT,
    amount DOUBLE PRECISION NOT NULL,
    features BYTEA NOT NULL,
    fraud_probability DOUBLE PRECISION NOT NULL,
    is_fraud_predicted BOOLEAN NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    scored_at TIMESTAMP NOT NULL,
    -- the score's reasons as JSON text (POST /score?explain=true), else NULL (revision 0002)
    reasons TEXT
);
CREATE INDEX IF NOT EXISTS ix_prediction_log_tx ON prediction_log (transaction_id);
CREATE INDEX IF NOT EXISTS ix_prediction_log_ts ON prediction_log (timestamp);
CREATE TABLE IF NOT EXISTS label_log (
    log_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id BIGINT NOT NULL,
    is_fraud SMALLINT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_label_log_tx ON label_log (transaction_id);
"""


def statements(script: str) -> list[str]:
    """The statements of a DDL script (no ``;`` inside statements; ``--`` comments dropped)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
