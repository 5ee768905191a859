"""The stream worker: fetch a micro-batch, score it through the API's service, commit.

One loop, one thread (the model watcher and the metrics server have their own):

1. every ``claim_interval_ms``, claim messages left pending by a dead consumer (``XAUTOCLAIM``);
2. otherwise fetch up to ``batch_size`` messages (blocking at most ``block_ms`` when idle);
3. :class:`~fraud_kedro.stream.processing.BatchProcessor` validates them, scores the valid
   transactions in one call (which writes the history and the prediction log in one store
   transaction before it returns) and records the labels;
4. commit: publish the results and dead letters and acknowledge the batch, atomically;
5. run the shadow challenger on the batch (never affects the results).

A batch that fails before its commit (state store down, model missing, Redis down) is kept and
retried with a growing pause; nothing of it is acknowledged, so a crash at any point leaves its
messages pending for a restart or another worker, and their re-processing is an idempotent replay.
``SIGTERM``/``SIGINT`` stop the loop after the batch in hand is committed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from fraud_kedro.stream.broker import Broker, BrokerError, Message
from fraud_kedro.stream.processing import BatchOutcome, BatchProcessor, RetryLater
from fraud_kedro.stream.stream_config import StreamConfig
from fraud_kedro.stream.telemetry import StreamMetrics

logger = logging.getLogger(__name__)

_MAX_BACKOFF_S = 5.0


@dataclass(eq=False)
class StreamWorker:
    """The consume -> score -> commit loop.

    Args:
        broker: The consumer-group member.
        processor: The micro-batch processor.
        config: The stream settings.
        metrics: The ``fraud_stream_*`` metrics.
        model_ready: Returns True while a model is loaded (for ``/health``).
    """

    broker: Broker
    processor: BatchProcessor
    config: StreamConfig
    metrics: StreamMetrics
    model_ready: Any = None

    def __post_init__(self) -> None:
        self.model_ready = self.model_ready or (lambda: True)
        self.stop_event = threading.Event()
        self.batches = 0
        self.failures = 0
        self._last_loop = time.monotonic()
        # a restarted member takes its own pending messages back first (fetch), claims later
        self._next_claim = time.monotonic() + self.config.claim_interval_ms / 1000
        self._next_lag = 0.0
        self._last_error: str | None = None

    def stop(self, *_: Any) -> None:
        """Ask the loop to stop after the batch in hand (usable as a signal handler)."""
        if not self.stop_event.is_set():
            logger.info("stop requested: finishing the batch in hand")
        self.stop_event.set()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``(healthy, body)``: the loop turned recently, a model is loaded, Redis answers."""
        stalled = time.monotonic() - self._last_loop
        limit = max(30.0, 5 * self.config.block_ms / 1000, 2 * _MAX_BACKOFF_S)
        checks = {
            "loop": stalled < limit,
            "model": bool(self.model_ready()),
            "broker": self.broker.ping(),
        }
        body = {
            "status": "ok" if all(checks.values()) else "unhealthy",
            "checks": checks,
            "consumer": self.config.consumer,
            "group": self.config.group,
            "batches": self.batches,
            "consecutive_failures": self.failures,
            "last_error": self._last_error,
        }
        return all(checks.values()), body

    # -- the loop -----------------------------------------------------------------------------
    def run(self, max_batches: int | None = None) -> None:
        """Run until :meth:`stop` (or ``max_batches`` committed batches, for tests)."""
        logger.info(
            "stream worker %s in group %s: %s, %s -> %s, %s (batch %d, block %d ms)",
            self.config.consumer,
            self.config.group,
            self.config.transactions,
            self.config.labels,
            self.config.scores,
            self.config.dead_letter,
            self.config.batch_size,
            self.config.block_ms,
        )
        while not self.stop_event.is_set():
            self._last_loop = time.monotonic()
            self._refresh_lag()
            try:
                messages = self._next_messages()
            except BrokerError as exc:
                self._failed("broker", exc)
                continue
            if not messages:
                continue
            self._until_committed(messages)
            if max_batches is not None and self.batches >= max_batches:
                break
        logger.info("stream worker stopped after %d batches", self.batches)

    def _next_messages(self) -> list[Message]:
        now = time.monotonic()
        if now >= self._next_claim:
            self._next_claim = now + self.config.claim_interval_ms / 1000
            claimed = self.broker.claim_stale(self.config.batch_size)
            if claimed:
                return claimed
        return self.broker.fetch(self.config.batch_size, self.config.block_ms)

    def _until_committed(self, messages: list[Message]) -> None:
        """Process and commit one batch, retrying it until it is committed (or stop)."""
        started = time.perf_counter()
        for msg in messages:
            self.metrics.consumed.labels(msg.stream).inc()
            if msg.redelivered:
                self.metrics.redelivered.labels(msg.stream).inc()
        self.metrics.batch_size.observe(len(messages))
        while True:
            self._last_loop = time.monotonic()
            try:
                outcome = self.processor.process(messages)
                self.broker.commit(messages, outcome.records)
            except RetryLater as exc:
                self._failed(exc.kind, exc)
            except BrokerError as exc:
                self._failed("broker", exc)
            else:
                self._committed(outcome, started)
                return
            if self.stop_event.is_set():
                logger.warning("stopping with %d uncommitted message(s): they stay pending", len(messages))
                return

    def _committed(self, outcome: BatchOutcome, started: float) -> None:
        m = self.metrics
        m.batch_seconds.observe(time.perf_counter() - started)
        m.last_commit.set(time.time())
        m.scored.labels("scored").inc(outcome.scored)
        m.scored.labels("replayed").inc(outcome.replayed)
        m.labels.inc(outcome.labels)
        for reason, n in outcome.dead_lettered.items():
            m.dead_lettered.labels(reason).inc(n)
            logger.warning("dead-lettered %d message(s): %s", n, reason)
        for rec in outcome.records:
            m.published.labels(rec.stream).inc()
        self.batches += 1
        self.failures = 0
        self._last_error = None
        for job in outcome.after_commit:
            job()  # the shadow challenger: catches its own errors

    def _failed(self, kind: str, exc: Exception) -> None:
        self.metrics.errors.labels(kind).inc()
        self.failures += 1
        self._last_error = f"{kind}: {exc}"
        pause = min(_MAX_BACKOFF_S, 0.1 * 2 ** min(self.failures - 1, 6))
        logger.error("batch not committed (%s: %s); retrying in %.1f s", kind, exc, pause)
        self.stop_event.wait(pause)

    def _refresh_lag(self) -> None:
        now = time.monotonic()
        if now < self._next_lag:
            return
        self._next_lag = now + self.config.lag_interval_ms / 1000
        try:
            lags = self.broker.lag()
        except BrokerError as exc:
            logger.warning("could not read the stream lag: %s", exc)
            return
        for stream, lag in lags.items():
            self.metrics.length.labels(stream).set(lag.length)
            self.metrics.pending.labels(stream).set(lag.pending)
            if lag.undelivered is not None:
                self.metrics.undelivered.labels(stream).set(lag.undelivered)
