"""Helpers of the stream-worker tests (fixtures are in conftest.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from support import serving as support_serving


def serving_config(registry, state_db: Path, **overrides) -> dict:
    """Scoring settings of a test worker or app (no background threads)."""
    return support_serving.serving_config(registry["uri"], state_db, **overrides)


def stream_config(redis_url: str, streams: dict[str, str], **overrides) -> dict:
    """Stream settings of a test worker (fast claims, no fixed metrics port)."""
    return {
        "url": redis_url,
        **streams,
        "consumer": "worker-a",
        "batch_size": 64,
        "block_ms": 50,
        "claim_idle_ms": 500,
        "claim_interval_ms": 200,
        "metrics_port": 0,
        "lag_interval_ms": 100,
        **overrides,
    }


as_tx = support_serving.tx_body  # a transaction object of ``POST /score`` from a row


class WorkerThread:
    """A worker running in a thread of the test process (stopped by :meth:`stop`)."""

    def __init__(self, running) -> None:
        self.running = running
        self.thread = threading.Thread(target=running.worker.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.running.worker.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        self.running.close()


def wait_for(predicate, timeout: float = 60.0, every: float = 0.05) -> None:
    """Wait until ``predicate()`` is true, or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s")
        time.sleep(every)
