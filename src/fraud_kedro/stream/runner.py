"""Assemble and run a stream worker: the API's service state, the Redis broker, the loop.

``python -m fraud_kedro.stream worker`` (``make stream``) calls :func:`run_worker`.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fraud_kedro.api import build_service_state
from fraud_kedro.api.serving_config import ServingConfig
from fraud_kedro.stream.processing import BatchProcessor
from fraud_kedro.stream.redis_broker import RedisStreamsBroker
from fraud_kedro.stream.stream_config import StreamConfig
from fraud_kedro.stream.telemetry import TelemetryServer, get_stream_metrics
from fraud_kedro.stream.worker import StreamWorker

logger = logging.getLogger(__name__)


@dataclass
class RunningWorker:
    """A worker and what it owns (closed by :meth:`close`)."""

    worker: StreamWorker
    state: Any
    broker: RedisStreamsBroker
    telemetry: TelemetryServer | None

    def close(self) -> None:
        """Stop the metrics server and the model watcher, close the broker and the store."""
        if self.telemetry is not None:
            self.telemetry.stop()
        if self.state.watcher is not None:
            self.state.watcher.stop()
        self.broker.close()
        if self.state._store is not None:
            self.state._store.close()


def build_worker(
    stream: StreamConfig | Mapping[str, Any] | None = None,
    serving: ServingConfig | Mapping[str, Any] | None = None,
) -> RunningWorker:
    """Build a worker from the environment (or overrides, for tests).

    Args:
        stream: Stream settings, or overrides of :meth:`StreamConfig.from_env`.
        serving: Scoring settings, or overrides of :meth:`ServingConfig.from_env` (model, store,
            shadow: exactly what the API would use).

    Returns:
        The assembled worker, its metrics server started (unless the port is -1).
    """
    cfg = stream if isinstance(stream, StreamConfig) else StreamConfig.from_env().replace(stream or {})
    state = build_service_state(serving)
    broker = RedisStreamsBroker(
        cfg.url,
        [cfg.transactions, cfg.labels],
        cfg.group,
        cfg.consumer,
        cfg.claim_idle_ms,
        cfg.start_id,
        cfg.output_maxlen,
    )
    processor = BatchProcessor(
        state.service,
        cfg.transactions,
        cfg.labels,
        cfg.scores,
        cfg.dead_letter,
        state.config.max_amount,
        cfg.max_deliveries,
    )
    worker = StreamWorker(
        broker, processor, cfg, get_stream_metrics(), lambda: state.champion.current is not None
    )
    telemetry = None
    if cfg.metrics_port >= 0:
        telemetry = TelemetryServer(cfg.metrics_host, cfg.metrics_port, worker.health)
        telemetry.start()
    return RunningWorker(worker, state, broker, telemetry)


def run_worker(stream: Mapping[str, Any] | None = None) -> None:
    """Run a worker until ``SIGTERM``/``SIGINT`` (the batch in hand is committed first)."""
    running = build_worker(stream)
    signal.signal(signal.SIGTERM, running.worker.stop)
    signal.signal(signal.SIGINT, running.worker.stop)
    try:
        running.worker.run()
    finally:
        running.close()
