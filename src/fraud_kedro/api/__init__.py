"""The scoring service: a Flask app factory served by gunicorn.

``gunicorn -c gunicorn.conf.py 'fraud_kedro.api:create_app()'`` (``make serve``). Each worker builds
the app once: it opens the shared state store, loads the champion model (once, never per request),
seeds the history on a first start and starts the model watcher. If the model cannot be loaded the
app still starts: ``/health`` answers 200, ``/ready`` 503 with the reason, and a reload (admin call
or alias poll) can bring a model in later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request

from fraud_kedro import service_logs
from fraud_kedro.api.errors import register_error_handlers
from fraud_kedro.api.history_cache import HistoryCache
from fraud_kedro.api.model_loader import LoadedModel, ModelHolder, ModelWatcher
from fraud_kedro.api.prometheus import Metrics, get_metrics
from fraud_kedro.api.scoring_errors import ScoringError
from fraud_kedro.api.service import Coalescer, ScoringService
from fraud_kedro.api.serving_config import ServingConfig
from fraud_kedro.features import FeatureParams
from fraud_kedro.store import (
    StateStore,
    StateStoreError,
    StoreConfigError,
    mask_url,
    open_store,
    read_label_log,
    read_prediction_log,
    seed_history,
)

__all__ = [
    "build_service_state",
    "create_app",
    "read_label_log",
    "read_prediction_log",
    "seed_history",
]

logger = logging.getLogger(__name__)


@dataclass
class ServiceState:
    """Everything a worker holds, at ``app.extensions["fraud"]``."""

    config: ServingConfig
    metrics: Metrics
    champion: ModelHolder
    shadow: ModelHolder | None = None
    watcher: ModelWatcher | None = None
    service: ScoringService = field(init=False)
    coalescer: Coalescer = field(init=False)
    _store: StateStore | None = None
    _store_error: str | None = None
    _store_retry_at: float = 0.0
    _store_lock: threading.Lock = field(default_factory=threading.Lock)

    _history: HistoryCache | None = None

    def __post_init__(self) -> None:
        """Build the scoring service on this state."""
        self.service = ScoringService(
            self.get_store,
            self.champion,
            self.metrics,
            self.shadow,
            self.config.shadow_share,
            history_reader=self.get_history,
        )
        self.coalescer = Coalescer(self.service, self.config.max_batch)

    def get_history(self) -> StateStore | HistoryCache:
        """What answers history look-ups: this worker's cache, or the store itself.

        Raises:
            StateStoreError: While the store cannot be opened.
        """
        store = self.get_store()
        if self.config.history_cache_rows <= 0:
            return store
        if self._history is None:
            days = max(
                [m.history_days for h in self.holders().values() if (m := h.current)]
                or [FeatureParams().history_days]
            )
            self._history = HistoryCache(store, days + 1, self.config.history_cache_rows)
        return self._history

    def get_store(self) -> StateStore:
        """The state store, opened on first use and re-tried (once a second) after a failure.

        Raises:
            StateStoreError: While it cannot be opened.
        """
        if self._store is not None:
            return self._store
        with self._store_lock:
            if self._store is None:
                if time.monotonic() < self._store_retry_at and self._store_error:
                    raise StateStoreError(self._store_error)
                try:
                    self._store = open_store(
                        self.config.state_db,
                        synchronous=self.config.state_synchronous,
                        busy_timeout_ms=self.config.state_busy_timeout_ms,
                    )
                    self._store_error = None
                except StoreConfigError:
                    raise
                except StateStoreError as exc:
                    self._store_error = str(exc)
                    self._store_retry_at = time.monotonic() + 1.0
                    logger.error("%s", exc)
                    raise
        return self._store

    def holders(self) -> dict[str, ModelHolder]:
        """The model holders by role."""
        out = {"champion": self.champion}
        if self.shadow is not None:
            out["shadow"] = self.shadow
        return out


def _configure_logging(level: str) -> None:
    # importing kedro (the model needs it) installs its rich console handler on the root logger;
    # a server wants plain one-line records, so that handler is replaced by a stream handler
    # (FRAUD_LOG_FORMAT=json: one JSON object per record, fraud_kedro/service_logs.py)
    import kedro.framework.project  # noqa: F401

    fmt = service_logs.log_format()
    root = logging.getLogger()
    rich = [h for h in root.handlers if type(h).__name__ == "RichHandler"]
    for handler in rich:
        root.removeHandler(handler)
    ours = [h for h in root.handlers if getattr(h, "_fraud_service", False)]
    if fmt == "json":  # every plain console handler of the root logger writes JSON instead
        import mlflow  # noqa: F401 - mlflow gives its logger a text handler of its own on import

        for handler in list(root.handlers):
            if handler in ours or type(handler) is logging.StreamHandler:
                root.removeHandler(handler)
        root.addHandler(service_logs.make_handler(fmt))
        mlflow_logger = logging.getLogger("mlflow")
        mlflow_logger.handlers.clear()
        mlflow_logger.propagate = True
        logging.captureWarnings(True)  # warnings too, as records of the py.warnings logger
    elif any(isinstance(h.formatter, service_logs.JsonFormatter) for h in ours):  # back to text
        for handler in ours:
            root.removeHandler(handler)
        root.addHandler(service_logs.make_handler(fmt))
    elif rich or not root.handlers:
        root.addHandler(service_logs.make_handler(fmt))
    logging.getLogger("fraud_kedro").setLevel(level)
    # the inference nodes run on every request: kedro's "Running node" line is noise here
    logging.getLogger("kedro.pipeline.node").setLevel(logging.WARNING)


def _pin_threads(n: int) -> None:
    """Limit the BLAS/OpenMP pools to ``n`` threads (0: leave them).

    One request at a time per worker: more threads would only spin against each other (measured:
    7 ms instead of 1.2 ms for a 91-tree HistGradientBoosting on one row, 2 cores). threadpoolctl
    only reaches libraries already loaded, and scikit-learn's OpenMP runtime arrives with the
    model, so this runs after every model load.
    """
    if n > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)


def _on_swap(metrics: Metrics, role: str, numeric_threads: int) -> Any:
    def on_swap(old: LoadedModel | None, new: LoadedModel) -> None:
        _pin_threads(numeric_threads)
        if old is not None:
            metrics.model_info.labels(role, old.name, old.version).set(0)
        metrics.model_info.labels(role, new.name, new.version).set(1)
        metrics.model_loaded.labels(role).set(new.loaded_at.replace(tzinfo=UTC).timestamp())

    return on_swap


def _seed_if_empty(state: ServiceState) -> None:
    """Seed an empty history from ``seed_path`` (one worker does it; the others wait on the lock)."""
    path = Path(state.config.seed_path) if state.config.seed_path else None
    if path is None or not path.exists():
        return
    try:
        store = state.get_store()
        if store.is_seeded():
            return
        import pandas as pd

        model = state.champion.current
        params = model.feature_params if model is not None else FeatureParams()
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        seed_history(store, frame, params, only_if_empty=True)  # once, whoever comes first
    except (StateStoreError, OSError, ValueError) as exc:
        logger.error("could not seed the history from %s: %s", path, exc)


def _warm_up(state: ServiceState) -> None:
    """Fill the history cache and run dummy predictions before this worker takes traffic.

    ``create_app`` returns (and gunicorn lets the worker accept requests) only after this, so a
    worker that answers ``/ready`` answers ``/score`` at its usual latency (measured before: p99
    0.9-1.4 s in the first ~16 s after ``/ready``, while the cache filled on live requests).
    """
    if not state.config.warm_up or state._store is None or state.champion.current is None:
        return
    try:
        seconds = state.service.warm_up()
    except (StateStoreError, ScoringError) as exc:
        logger.error("warm-up failed (the first requests will be slower): %s", exc)
        return
    cache = state._history
    logger.info(
        "worker warmed in %.2f s (history cache: %s rows)",
        seconds,
        len(cache) if cache is not None else "off",
    )


def build_service_state(config: ServingConfig | Mapping[str, Any] | None = None) -> ServiceState:
    """Build what a worker holds: settings, metrics, model holders, state store, model watcher.

    The API (:func:`create_app`) and the stream worker (:mod:`fraud_kedro.stream`) both start
    from here, so they serve the same model with the same store and shadow challenger.

    Args:
        config: A :class:`ServingConfig`, or a mapping of its field names overriding the
            environment (tests), or None to read only the environment.

    Returns:
        The state, with its model loaded (or the load error recorded) and the watcher started.

    Raises:
        StoreConfigError: ``FRAUD_STATE_URL`` is wrong (scheme, unreachable server, schema
            version): the worker does not start.
    """
    if isinstance(config, ServingConfig):
        cfg = config
    else:
        cfg = ServingConfig.from_env().replace(config or {})
    _configure_logging(cfg.log_level)
    if cfg.tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(cfg.tracking_uri)
    metrics = get_metrics()

    champion = ModelHolder(
        cfg.model_uri,
        "champion",
        cfg.model_name,
        on_swap=_on_swap(metrics, "champion", cfg.numeric_threads),
    )
    _pin_threads(cfg.numeric_threads)
    outcome = champion.reload()
    metrics.reloads.labels("champion", outcome.status).inc()
    if outcome.status == "failed":
        logger.error(
            "MODEL NOT LOADED from %s: %s. /ready answers 503 and /score 503 until a reload "
            "succeeds (POST /admin/reload or the alias poll)",
            cfg.model_uri,
            outcome.error,
        )
    shadow = None
    if cfg.shadow_model_uri:
        shadow = ModelHolder(
            cfg.shadow_model_uri,
            "shadow",
            cfg.model_name,
            on_swap=_on_swap(metrics, "shadow", cfg.numeric_threads),
        )
        shadow_outcome = shadow.reload()
        metrics.reloads.labels("shadow", shadow_outcome.status).inc()

    state = ServiceState(cfg, metrics, champion, shadow)
    try:
        state.get_store()
    except StoreConfigError as exc:  # a wrong setting: start-up stops, naming it
        logger.critical("%s", exc)
        raise
    except StateStoreError:
        logger.error(
            "state store %s unavailable at start; /ready answers 503", mask_url(cfg.state_db)
        )
    _seed_if_empty(state)
    _warm_up(state)
    if state._store is not None:
        state.watcher = ModelWatcher(
            state.holders(), state._store, cfg.model_poll_seconds, cfg.model_sync_seconds
        )
        state.watcher.start()  # no thread when both periods are 0
    return state


def create_app(config: ServingConfig | Mapping[str, Any] | None = None) -> Flask:
    """Build the scoring app.

    Args:
        config: A :class:`ServingConfig`, or a mapping of its field names overriding the
            environment (tests), or None to read only the environment.

    Returns:
        The Flask app.
    """
    state = build_service_state(config)
    cfg, metrics = state.config, state.metrics
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if not cfg.api_keys:
        logger.warning("FRAUD_API_KEYS is not set: /score and /feedback need no API key")
    app.extensions["fraud"] = state

    from fraud_kedro.api import admin, console, docs, feedback, health, openapi, scoring, ui

    for module in (scoring, feedback, health, admin, openapi, ui, docs, console):
        app.register_blueprint(module.bp)
    register_error_handlers(app)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()
        g.request_id = service_logs.request_id_from(request.headers.get(service_logs.REQUEST_ID_HEADER))

    @app.after_request
    def _observe(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        labels = (endpoint, request.method, str(response.status_code))
        metrics.requests.labels(*labels).inc()
        metrics.latency.labels(*labels).observe(elapsed)
        response.headers["Server-Timing"] = f"app;dur={elapsed * 1e3:.3f}"
        if "request_id" in g:
            response.headers[service_logs.REQUEST_ID_HEADER] = g.request_id
        return response

    return app
