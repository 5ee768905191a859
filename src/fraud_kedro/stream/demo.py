"""``make demo-stream``: a worker and a producer for a few seconds, then what came out.

Runs the worker in this process (settings from the environment, as ``make stream``: the champion
of ``mlflow.db``, the serving store), replays simulated transactions and their labels at a fixed
rate, waits until every transaction has its result, and logs the counts, the lag and a few results.
Needs a champion (``make run``). A second run replays the same transactions: their results come
from the log (``"replayed": true``).
"""

from __future__ import annotations

import json
import logging
import threading
import time

import redis

from fraud_kedro.stream.producer import produce, simulated_transactions, transaction_payloads
from fraud_kedro.stream.runner import build_worker

logger = logging.getLogger(__name__)


def run_demo(seconds: float = 15.0, rate: float = 200.0) -> int:
    """Score ``seconds * rate`` simulated transactions through the stream.

    Returns:
        0 when every transaction got a result, 1 otherwise.
    """
    running = build_worker()
    cfg = running.worker.config
    if running.state.champion.current is None:
        logger.error("no model in service (%s): run `make run` first", running.state.champion.last_error)
        running.close()
        return 1
    client = redis.Redis.from_url(cfg.url)
    before = client.xlen(cfg.scores) if client.exists(cfg.scores) else 0
    thread = threading.Thread(target=running.worker.run, name="stream-worker", daemon=True)
    thread.start()
    try:
        frame = simulated_transactions(days=1).head(int(seconds * rate))
        payloads = list(transaction_payloads(frame))
        logger.info("producing %d transactions at %.0f/s to %s", len(payloads), rate, cfg.transactions)
        sent, took = produce(running.broker, payloads, cfg.transactions, rate, cfg.labels)
        deadline = time.monotonic() + 60
        while client.xlen(cfg.scores) - before < sent and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        running.worker.stop()
        thread.join(timeout=30)
        running.close()
    out = client.xlen(cfg.scores) - before
    latest = [json.loads(f[b"data"]) for _, f in client.xrevrange(cfg.scores, count=5)]
    dead = client.xlen(cfg.dead_letter) if client.exists(cfg.dead_letter) else 0
    client.close()
    logger.info(
        "sent %d in %.1f s; %d results on %s; %d dead letters in total", sent, took, out, cfg.scores, dead
    )
    for item in reversed(latest):
        logger.info("  %s", item)
    logger.info("metrics while it runs: `make stream`, then curl localhost:%d/metrics", cfg.metrics_port)
    return 0 if out >= sent else 1
