"""Configuration of the scoring service, read from environment variables.

Every setting has a default that works on a developer machine; ``docs/serving.md`` lists them.
``create_app(config)`` accepts a mapping of field names to override the environment (tests do).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraud_kedro.contract import MODEL_NAME, model_uri
from fraud_kedro.store.connect import DEFAULT_STATE_DB, state_url_from_env

DEFAULT_MODEL_URI = model_uri()
DEFAULT_SEED_PATH = "data/02_intermediate/validated_transactions.parquet"


class ConfigError(ValueError):
    """A setting has a value the service cannot use."""


def _number(env: Mapping[str, str], name: str, convert: type, what: str) -> Any:
    """``convert`` of the variable ``name``; None when it is unset or blank."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return convert(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from exc


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    """An integer setting (``default`` when unset), at least ``minimum``.

    Raises:
        ConfigError: Not an integer, or below ``minimum`` (naming the variable).
    """
    value = _number(env, name, int, "an integer")
    if value is None:
        return default
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    value = _number(env, name, float, "a number")
    if value is None:
        return default
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be within [{lo}, {hi}], got {value}")
    return value


def _keys(raw: str | None) -> tuple[str, ...]:
    return tuple(k.strip() for k in (raw or "").split(",") if k.strip())


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ServingConfig:
    """All settings of the scoring service.

    Attributes:
        model_uri: MLflow URI of the served model (``FRAUD_MODEL_URI``).
        tracking_uri: MLflow tracking/registry URI (``MLFLOW_TRACKING_URI``); None keeps MLflow's.
        api_keys: Accepted ``X-API-Key`` values (``FRAUD_API_KEYS``, comma-separated); empty
            means no authentication on the scoring endpoints.
        admin_keys: Keys for ``/admin/*`` (``FRAUD_ADMIN_KEYS``, defaults to the API keys); with
            no key configured the admin endpoints are refused.
        state_db: The state store: ``FRAUD_STATE_URL`` (``sqlite:///PATH`` or
            ``postgresql://...``), else ``FRAUD_STATE_DB`` (a SQLite path).
        state_synchronous: SQLite ``synchronous`` pragma (``FRAUD_STATE_SYNCHRONOUS``): FULL
            survives power loss, NORMAL (WAL) survives process crashes and is faster.
        state_busy_timeout_ms: How long a request waits for the SQLite write lock
            (``FRAUD_STATE_BUSY_TIMEOUT_MS``) before answering 503.
        seed_path: Transactions used to seed an empty history (``FRAUD_SEED_PATH``); "" disables.
        max_batch: Largest number of transactions (or labels) in one request (``FRAUD_MAX_BATCH``).
        max_body_bytes: Largest request body (``FRAUD_MAX_BODY_BYTES``); larger bodies get 413.
        max_amount: Largest accepted amount (``FRAUD_MAX_AMOUNT``).
        model_poll_seconds: Period of the check of the model alias (``FRAUD_MODEL_POLL_SECONDS``);
            0 disables polling.
        model_sync_seconds: Period at which a worker looks for a reload made by another worker
            (``FRAUD_MODEL_SYNC_SECONDS``); 0 disables.
        shadow_model_uri: Optional challenger scored in shadow mode (``FRAUD_SHADOW_MODEL_URI``).
        shadow_share: Share of transactions the shadow model scores (``FRAUD_SHADOW_SHARE``).
        shadow_after_response: Score the shadow after the answer is sent (default) rather than
            before (``FRAUD_SHADOW_AFTER_RESPONSE``).
        model_name: Name reported for a model loaded from a non-registry URI.
        log_level: Level of the ``fraud_kedro`` loggers (``FRAUD_LOG_LEVEL``).
        history_cache_rows: Row budget of each worker's in-memory history
            (``FRAUD_HISTORY_CACHE_ROWS``, default 2,000,000; 0 reads SQLite on every request).
        numeric_threads: Threads of the BLAS/OpenMP pools per worker
            (``FRAUD_NUMERIC_THREADS``, default 1; 0 leaves them alone).
        warm_up: Fill the history cache and run dummy predictions before the worker takes
            traffic (``FRAUD_WARM_UP``, default true).
    """

    model_uri: str = DEFAULT_MODEL_URI
    tracking_uri: str | None = None
    api_keys: tuple[str, ...] = ()
    admin_keys: tuple[str, ...] = ()
    state_db: str = DEFAULT_STATE_DB
    state_synchronous: str = "NORMAL"
    state_busy_timeout_ms: int = 5000
    seed_path: str = DEFAULT_SEED_PATH
    max_batch: int = 10_000
    max_body_bytes: int = 8 * 1024 * 1024
    max_amount: float = 1e9
    model_poll_seconds: int = 60
    model_sync_seconds: int = 2
    shadow_model_uri: str | None = None
    shadow_share: float = 1.0
    shadow_after_response: bool = True
    model_name: str = MODEL_NAME
    log_level: str = "INFO"
    numeric_threads: int = 1
    history_cache_rows: int = 2_000_000
    warm_up: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingConfig:
        """Read the settings from environment variables.

        Args:
            env: The environment (defaults to ``os.environ``).

        Returns:
            The configuration.

        Raises:
            ConfigError: On a malformed value, naming the variable.
        """
        env = os.environ if env is None else env
        api_keys = _keys(env.get("FRAUD_API_KEYS"))
        admin_keys = _keys(env.get("FRAUD_ADMIN_KEYS")) or api_keys
        synchronous = (env.get("FRAUD_STATE_SYNCHRONOUS") or "NORMAL").strip().upper()
        if synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigError(f"FRAUD_STATE_SYNCHRONOUS must be NORMAL or FULL, got {synchronous}")
        return cls(
            model_uri=env.get("FRAUD_MODEL_URI") or DEFAULT_MODEL_URI,
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            api_keys=api_keys,
            admin_keys=admin_keys,
            state_db=state_url_from_env(env),
            state_synchronous=synchronous,
            state_busy_timeout_ms=env_int(env, "FRAUD_STATE_BUSY_TIMEOUT_MS", 5000),
            seed_path=env.get("FRAUD_SEED_PATH", DEFAULT_SEED_PATH),
            max_batch=env_int(env, "FRAUD_MAX_BATCH", 10_000, minimum=1),
            max_body_bytes=env_int(env, "FRAUD_MAX_BODY_BYTES", 8 * 1024 * 1024, minimum=1024),
            max_amount=_float(env, "FRAUD_MAX_AMOUNT", 1e9, 0.0, 1e15),
            model_poll_seconds=env_int(env, "FRAUD_MODEL_POLL_SECONDS", 60),
            model_sync_seconds=env_int(env, "FRAUD_MODEL_SYNC_SECONDS", 2),
            shadow_model_uri=env.get("FRAUD_SHADOW_MODEL_URI") or None,
            shadow_share=_float(env, "FRAUD_SHADOW_SHARE", 1.0, 0.0, 1.0),
            shadow_after_response=_bool(env, "FRAUD_SHADOW_AFTER_RESPONSE", True),
            model_name=env.get("FRAUD_MODEL_NAME") or MODEL_NAME,
            log_level=(env.get("FRAUD_LOG_LEVEL") or "INFO").upper(),
            numeric_threads=env_int(env, "FRAUD_NUMERIC_THREADS", 1),
            history_cache_rows=env_int(env, "FRAUD_HISTORY_CACHE_ROWS", 2_000_000),
            warm_up=_bool(env, "FRAUD_WARM_UP", True),
        )

    def replace(self, overrides: Mapping[str, Any]) -> ServingConfig:
        """A copy with some fields replaced (unknown names raise :class:`ConfigError`)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"unknown serving settings: {sorted(unknown)}")
        values = dict(overrides)
        for key in ("api_keys", "admin_keys"):
            if isinstance(values.get(key), str):
                values[key] = _keys(values[key])
        if "api_keys" in values and "admin_keys" not in values:
            values["admin_keys"] = values["api_keys"]
        return dataclasses.replace(self, **values)

    @property
    def state_db_path(self) -> Path:
        """The state store file as a path."""
        return Path(self.state_db)
