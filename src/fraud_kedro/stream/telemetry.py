"""The worker's Prometheus metrics (``fraud_stream_*``) and its ``/metrics`` + ``/health`` server.

The service's own metrics (``fraud_api_scored_transactions``, state-store errors, model info...)
are in the same process registry and are served too: the worker scores through the same service.
Metric names are listed in ``docs/streaming.md``; alert rules refer to them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from fraud_kedro.api.prometheus import once_per_process

logger = logging.getLogger(__name__)

BATCH_SECONDS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


@dataclass(frozen=True)
class StreamMetrics:
    """The stream worker's metrics."""

    consumed: Counter
    scored: Counter
    dead_lettered: Counter
    redelivered: Counter
    labels: Counter
    published: Counter
    errors: Counter
    pending: Gauge
    length: Gauge
    undelivered: Gauge
    batch_seconds: Histogram
    batch_size: Histogram
    last_commit: Gauge


@once_per_process
def get_stream_metrics() -> StreamMetrics:
    """The metrics of this process (created on first call, like the service's)."""
    return StreamMetrics(
        consumed=Counter("fraud_stream_consumed", "Messages read from the input streams", ["stream"]),
        scored=Counter(
            "fraud_stream_scored",
            "Transactions with a result published: scored now, or replayed from the log",
            ["outcome"],
        ),
        dead_lettered=Counter(
            "fraud_stream_dead_lettered",
            "Messages sent to the dead-letter stream (and acknowledged), by reason",
            ["reason"],
        ),
        redelivered=Counter(
            "fraud_stream_redelivered",
            "Messages delivered again: claimed from another consumer or taken back after a restart",
            ["stream"],
        ),
        labels=Counter("fraud_stream_labels", "Labels recorded through the feedback path"),
        published=Counter("fraud_stream_published", "Records published to the output streams", ["stream"]),
        errors=Counter(
            "fraud_stream_errors",
            "Batches not committed, to be retried (broker, state_store, model)",
            ["kind"],
        ),
        pending=Gauge(
            "fraud_stream_pending",
            "Messages delivered to the group and not acknowledged yet",
            ["stream"],
        ),
        length=Gauge("fraud_stream_length", "Entries in the input stream", ["stream"]),
        undelivered=Gauge(
            "fraud_stream_lag",
            "Entries not yet delivered to the group (consumer lag)",
            ["stream"],
        ),
        batch_seconds=Histogram(
            "fraud_stream_batch_duration_seconds",
            "Time from a batch's fetch to its commit",
            buckets=BATCH_SECONDS_BUCKETS,
        ),
        batch_size=Histogram(
            "fraud_stream_batch_size", "Messages per micro-batch", buckets=BATCH_SIZE_BUCKETS
        ),
        last_commit=Gauge(
            "fraud_stream_last_commit_timestamp_seconds",
            "Unix time of the last committed batch",
        ),
    )


class _Handler(BaseHTTPRequestHandler):
    health: Callable[[], tuple[bool, dict[str, Any]]]

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/metrics":
            self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        elif self.path.split("?")[0] == "/health":
            ok, body = self.health()
            self._send(200 if ok else 503, json.dumps(body).encode(), "application/json")
        else:
            self._send(404, b'{"error": "not found", "details": []}', "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        logger.debug("metrics server: " + format, *args)


class TelemetryServer:
    """``/metrics`` and ``/health`` on a thread of the worker.

    Args:
        host: Address to bind.
        port: Port (0: a free one, see :attr:`port`).
        health: Returns ``(healthy, body)``.
    """

    def __init__(self, host: str, port: int, health: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        handler = type("Handler", (_Handler,), {"health": staticmethod(health)})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="stream-telemetry", daemon=True
        )

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()
        logger.info("stream worker metrics on :%d (/metrics, /health)", self.port)

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
