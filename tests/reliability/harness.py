"""Harness of the reliability tests and benchmarks: a model registry, a seeded state store, a real
gunicorn started like ``make serve``, /proc probes and a fixed-rate load generator.

No pytest in here: ``benchmarks/soak_bench.py`` and ``benchmarks/kill_worker_bench.py`` import it
too. Everything runs on 127.0.0.1; every process started here is stopped by its own pid.

The model is built the way ``tests/api`` builds it (``tests/api/model_factory.py``: the project's
inference pipeline exported as a kedro-mlflow ``KedroPipelineModel`` and registered as
``fraud_detector@champion``) on transactions of ``tests/api/simdata.py``.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tests") not in sys.path:  # the benchmarks import this module too
    sys.path.insert(0, str(ROOT / "tests"))

from support import world  # noqa: E402
from support.gunicorn import (  # noqa: E402
    ADMIN_KEY,
    API_KEY,
    QUIET_ENV,
    Gunicorn,
    Reply,
    busy_worker,
    call,
    connection_owner,
    free_port,
    proc_children,
    rss_kib,
    server_env,
)
from support.registry import Registry, build_registry, feature_params, mlflow_uri, seed_state  # noqa: E402
from support.serving import tx_body  # noqa: E402

__all__ = [
    "ADMIN_KEY",
    "API_KEY",
    "Gunicorn",
    "Registry",
    "Reply",
    "build_registry",
    "busy_worker",
    "connection_owner",
    "call",
    "feature_params",
    "free_port",
    "mlflow_uri",
    "proc_children",
    "rss_kib",
    "seed_state",
    "server_env",
    "tx_body",
]

for _name, _value in QUIET_ENV.items():
    os.environ.setdefault(_name, _value)


# -- data and model ------------------------------------------------------------------------------


@dataclass
class World:
    """Simulated transactions split in time: the history (training, seeding) and what follows."""

    history: pd.DataFrame
    future: pd.DataFrame


def simulate_world(
    n_customers: int = 300, n_terminals: int = 400, n_days: int = 60, future_days: int = 7, seed: int = 0
) -> World:
    """Transactions of ``tests/api/simdata.py``; the last ``future_days`` days are the future."""
    tx = world.transactions(n_customers, n_terminals, n_days, seed=seed)
    cut = tx["timestamp"].min().normalize() + pd.Timedelta(days=n_days - future_days)
    return World(world.before(tx, cut), world.days_from(tx, cut))


class TxStream:
    """Endless stream of raw transactions in time order, under fresh ids.

    Goes through ``frame`` (sorted by time) and, when it is used up, again with the timestamps moved
    forward by the span of the frame, so time keeps advancing and the feature windows stay as full
    as in real traffic (replaying the same day again would pile every replay into the same windows).
    """

    def __init__(self, frame: pd.DataFrame, id_offset: int = 900_000_000_000) -> None:
        self._rows = list(frame.sort_values(["timestamp", "transaction_id"]).itertuples(index=False))
        start, end = frame["timestamp"].min(), frame["timestamp"].max()
        self._span = (end - start).ceil("D") if end > start else pd.Timedelta(days=1)
        self._next_id = id_offset
        self._pos = 0
        self._lap = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> list[dict]:
        """The next ``n`` transactions as request bodies."""
        out = []
        with self._lock:
            for _ in range(n):
                if self._pos == len(self._rows):
                    self._pos, self._lap = 0, self._lap + 1
                out.append(tx_body(self._rows[self._pos], self._next_id, self._span * self._lap))
                self._pos += 1
                self._next_id += 1
        return out


# -- load ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One request of a load run (times are monotonic seconds)."""

    scheduled: float
    started: float
    ended: float
    kind: str
    ids: list[int]
    status: int | None
    error: str | None = None
    replayed: bool = False
    body: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def latency(self) -> float:
        """Seconds from the scheduled send time (open loop: queueing in the client counts)."""
        return self.ended - self.scheduled


class FixedRateLoad:
    """Open-loop load: ``rate`` requests a second, a share of them batches, from a pool of threads.

    The request times are fixed in advance (no coordinated omission: a slow answer does not delay
    the next send, and latency counts from the planned send time).

    Args:
        port: Service port.
        stream: Source of transactions.
        rate: Requests per second.
        batch_share: Share of requests that are batches.
        batch_size: Transactions per batch.
        threads: Client threads (the most requests in flight at once).
        seed: Seed of the single/batch mix.
        timeout: Client timeout of a request.
        keep_bodies: Keep each request's body in its :class:`Outcome` (to retry it).
    """

    def __init__(
        self,
        port: int,
        stream: TxStream,
        rate: float,
        batch_share: float = 0.1,
        batch_size: int = 100,
        threads: int = 16,
        seed: int = 0,
        timeout: float = 60,
        keep_bodies: bool = True,
    ) -> None:
        self.port = port
        self.stream = stream
        self.rate = rate
        self.batch_share = batch_share
        self.batch_size = batch_size
        self.threads = threads
        self.timeout = timeout
        self.keep_bodies = keep_bodies
        self._rng = np.random.default_rng(seed)
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._pool: list[threading.Thread] = []
        self._planner: threading.Thread | None = None
        self.t0 = 0.0

    def _send(self, scheduled: float, kind: str) -> None:
        if kind == "batch":
            items = self.stream.take(self.batch_size)
            body: Any = {"transactions": items}
        else:
            items = self.stream.take(1)
            body = items[0]
        started = time.monotonic()
        reply = call(self.port, "POST", "/score", body, timeout=self.timeout)
        outcome = Outcome(
            scheduled,
            started,
            time.monotonic(),
            kind,
            [t["transaction_id"] for t in items],
            reply.status,
            reply.error or (None if reply.status == 200 else str(reply.body)[:300]),
            reply.headers.get("idempotent-replayed") == "true",
            body if self.keep_bodies else None,
        )
        with self._lock:
            self.outcomes.append(outcome)

    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._send(*item)

    def _plan(self, duration: float) -> None:
        n = 0
        while not self._stop.is_set():
            at = self.t0 + n / self.rate
            if at - self.t0 >= duration:
                break
            delay = at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            kind = "batch" if self._rng.random() < self.batch_share else "single"
            self._queue.put((at, kind))
            n += 1

    def start(self, duration: float) -> FixedRateLoad:
        """Start sending for ``duration`` seconds (in the background)."""
        self.t0 = time.monotonic()
        self._pool = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.threads)]
        for t in self._pool:
            t.start()
        self._planner = threading.Thread(target=self._plan, args=(duration,), daemon=True)
        self._planner.start()
        return self

    def join(self, timeout: float = 300) -> list[Outcome]:
        """Wait for the planned requests to be answered; returns the outcomes in send order."""
        assert self._planner is not None
        self._planner.join(timeout)
        for _ in self._pool:
            self._queue.put(None)
        for t in self._pool:
            t.join(timeout)
        return sorted(self.outcomes, key=lambda o: o.scheduled)

    def stop(self) -> list[Outcome]:
        """Stop planning new requests; wait for those sent."""
        self._stop.set()
        return self.join()


def percentile_ms(values: list[float], q: float) -> float:
    """The ``q`` percentile of durations in seconds, in ms (nan when empty)."""
    return float(np.percentile(np.asarray(values) * 1e3, q)) if values else float("nan")


def sample_rss(
    server: Gunicorn, every: float, stop: threading.Event, out: list[tuple[float, dict[int, int]]]
) -> None:
    """Append ``(monotonic time, {worker pid: RSS KiB})`` to ``out`` every ``every`` s until ``stop``."""
    while not stop.is_set():
        out.append((time.monotonic(), {p: r for p in server.workers() if (r := rss_kib(p)) is not None}))
        stop.wait(every)


def read_logged_ids(db: Path) -> set[int]:
    """Transaction ids in the prediction log."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT transaction_id FROM prediction_log")}
    finally:
        conn.close()


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()
