"""gunicorn settings of the scoring service (``make serve``); every value comes from the environment.

``PORT`` (8000) and ``HOST`` (127.0.0.1) make the bind address; ``FRAUD_WORKERS`` (default: number
of CPUs) workers each load the model once, with ``FRAUD_WORKER_THREADS`` (8) request threads;
``FRAUD_WORKER_TIMEOUT`` (30 s) kills a stuck worker; ``FRAUD_GRACEFUL_TIMEOUT`` (30 s) lets
in-flight requests finish on SIGTERM/SIGHUP; ``FRAUD_MAX_REQUESTS`` (0 = never) recycles
workers; ``FRAUD_ACCESS_LOG`` ("-" for stdout, unset for none) and ``FRAUD_LOG_LEVEL`` (info)
control logging; ``FRAUD_LOG_FORMAT=json`` makes every record one JSON object (app and gunicorn,
src/fraud_kedro/service_logs.py). See docs/serving.md.

Threads do not score in parallel (the GIL; scoring is CPU-bound): they let the requests that arrive
while a worker is busy wait *inside* it, where the Coalescer scores them together in one call. A
call costs mostly a fixed amount (pandas, the model's tree walk), so this multiplies throughput
under load and cuts queueing (measured on 2 cores, c=8: 2-5x the requests per second of sync
workers, p50 13 ms instead of 22-84 ms). It also makes the keep-alive imbalance of threaded workers
(one worker holding most connections) cheap: that worker merges more requests per call.
``FRAUD_WORKER_THREADS=1`` gives plain sync workers. BLAS/OpenMP pools are pinned to one thread.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

# one numeric thread per worker, set before any worker imports numpy/sklearn
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# Prometheus multiprocess mode: set before the workers import prometheus_client
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="fraud-api-metrics-")

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("FRAUD_WORKERS") or os.cpu_count() or 2)
# threads > 1: gthread workers, whose concurrent /score requests are scored together (Coalescer)
threads = int(os.environ.get("FRAUD_WORKER_THREADS") or 8)
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("FRAUD_WORKER_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("FRAUD_GRACEFUL_TIMEOUT", "30"))
keepalive = 2
max_requests = int(os.environ.get("FRAUD_MAX_REQUESTS", "0"))
max_requests_jitter = max(max_requests // 10, 0)
backlog = 2048
preload_app = False  # each worker loads its own model after the fork
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
proc_name = "fraud-kedro-api"
accesslog = os.environ.get("FRAUD_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("FRAUD_LOG_LEVEL", "info").lower()
capture_output = False
if os.environ.get("FRAUD_LOG_FORMAT", "").strip().lower() == "json":  # one JSON object per record
    from fraud_kedro.service_logs import gunicorn_logconfig

    logconfig_dict = gunicorn_logconfig(accesslog)


def on_starting(server) -> None:
    """Start with an empty metrics folder; warn when running as root."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if folder.exists():
        for item in folder.glob("*.db"):
            item.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        server.log.warning("running as root: run the service as an unprivileged user")


def child_exit(server, worker) -> None:
    """Drop the live gauges of a worker that exited."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the metrics folder when it is ours."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if Path(folder).name.startswith("fraud-api-metrics-"):
        shutil.rmtree(folder, ignore_errors=True)


def post_fork(server, worker) -> None:
    """Pin the numeric thread pools of the new worker."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        logging.getLogger(__name__).warning("threadpoolctl missing: thread pools not pinned")
