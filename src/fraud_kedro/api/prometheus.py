"""Prometheus metrics, safe across gunicorn workers.

Under gunicorn, ``gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker starts:
every worker then writes its samples to memory-mapped files there and ``/metrics`` aggregates all
workers (``prometheus_client.multiprocess``). Without it (tests, ``flask run``) the process registry
is used. The metric objects are created once per process, on first use.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
PROBABILITY_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
BATCH_BUCKETS = (1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000)

_T = TypeVar("_T")


def once_per_process(build: Callable[[], _T]) -> Callable[[], _T]:
    """``build`` as a function that makes its value on the first call and returns that same value
    on every later one, thread-safely: collectors register once per process, like REGISTRY itself."""
    lock = threading.Lock()
    made: list[_T] = []

    @functools.wraps(build)
    def get() -> _T:
        with lock:
            if not made:
                made.append(build())
            return made[0]

    return get


@dataclass(frozen=True)
class Metrics:
    """The service's metrics."""

    requests: Counter
    latency: Histogram
    scored: Counter
    probability: Histogram
    batch_size: Histogram
    model_info: Gauge
    reloads: Counter
    store_errors: Counter
    shadow_scored: Counter
    shadow_errors: Counter
    model_loaded: Gauge


@once_per_process
def get_metrics() -> Metrics:
    """The metrics of this process (created on first call)."""
    return Metrics(
        requests=Counter(
            "fraud_api_requests",
            "HTTP requests by endpoint, method and status",
            ["endpoint", "method", "status"],
        ),
        latency=Histogram(
            "fraud_api_request_duration_seconds",
            "Time spent handling a request, by endpoint and status",
            ["endpoint", "method", "status"],
            buckets=LATENCY_BUCKETS,
        ),
        scored=Counter(
            "fraud_api_scored_transactions",
            "Transactions scored, by model version and decision",
            ["model_version", "decision"],
        ),
        probability=Histogram(
            "fraud_api_fraud_probability",
            "Distribution of the fraud probabilities returned",
            ["model_version"],
            buckets=PROBABILITY_BUCKETS,
        ),
        batch_size=Histogram(
            "fraud_api_batch_size",
            "Transactions per /score request",
            buckets=BATCH_BUCKETS,
        ),
        model_info=Gauge(
            "fraud_api_model_info",
            "1 for each model version in service in a live worker (role, name, version)",
            ["role", "name", "version"],
            multiprocess_mode="livemax",
        ),
        reloads=Counter(
            "fraud_api_model_reloads",
            "Model reload attempts by role and outcome",
            ["role", "outcome"],
        ),
        store_errors=Counter(
            "fraud_api_state_store_errors",
            "State store failures (answered 503)",
            ["operation"],
        ),
        shadow_scored=Counter(
            "fraud_api_shadow_scored_transactions",
            "Transactions scored by the shadow model",
            ["model_version"],
        ),
        shadow_errors=Counter(
            "fraud_api_shadow_errors",
            "Shadow scoring failures (never visible to clients)",
        ),
        model_loaded=Gauge(
            "fraud_api_model_loaded_timestamp_seconds",
            "When the model in service was loaded (Unix time): its age since promotion",
            ["role"],
            multiprocess_mode="livemin",
        ),
    )


def render_metrics() -> tuple[bytes, str]:
    """The exposition text (all workers when multiprocess mode is on) and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
