"""SIGKILL a worker process mid-stream: after a restart (or a second worker's claim) every
transaction is logged exactly once and has a result; SIGTERM stops a worker cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from streamkit import as_tx, wait_for

from fraud_kedro.api import read_prediction_log

pytestmark = pytest.mark.slow


def _start(registry: dict, state_db: Path, streams: dict, redis_url: str, consumer: str, log: Path):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry["uri"],
        "FRAUD_MODEL_URI": "models:/fraud_detector@champion",
        "FRAUD_STATE_DB": str(state_db),
        "FRAUD_SEED_PATH": "",
        "FRAUD_MODEL_POLL_SECONDS": "0",
        "FRAUD_MODEL_SYNC_SECONDS": "0",
        "FRAUD_STREAM_URL": redis_url,
        "FRAUD_STREAM_TRANSACTIONS": streams["transactions"],
        "FRAUD_STREAM_LABELS": streams["labels"],
        "FRAUD_STREAM_SCORES": streams["scores"],
        "FRAUD_STREAM_DEAD_LETTER": streams["dead_letter"],
        "FRAUD_STREAM_GROUP": streams["group"],
        "FRAUD_STREAM_CONSUMER": consumer,
        "FRAUD_STREAM_BATCH_SIZE": "16",
        "FRAUD_STREAM_BLOCK_MS": "50",
        "FRAUD_STREAM_CLAIM_IDLE_MS": "1000",
        "FRAUD_STREAM_CLAIM_INTERVAL_MS": "200",
        "FRAUD_STREAM_METRICS_PORT": "0",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "fraud_kedro.stream", "worker"],
        env=env,
        cwd=log.parent,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.parametrize("recovery", ["restart", "second_worker"])
def test_sigkill_mid_stream_loses_nothing_and_logs_nothing_twice(
    registry, redis_url, streams, state_db, held_out, tmp_path, recovery
):
    client = redis.Redis.from_url(redis_url)
    bodies = [as_tx(r) for r in held_out.head(1200).itertuples()]
    n = len(bodies)
    log = tmp_path / "workers.log"
    first = _start(registry, state_db, streams, redis_url, "worker-a", log)
    second = None
    try:
        wait_for(lambda: client.exists(streams["transactions"]) or first.poll() is not None, timeout=300)
        # published while the worker runs: it scores as they come
        with client.pipeline(transaction=False) as pipe:
            for body in bodies:
                pipe.xadd(streams["transactions"], {"data": json.dumps(body)})
            pipe.execute()
        wait_for(lambda: client.xlen(streams["scores"]) >= n // 5 or first.poll() is not None, timeout=300)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        logged_at_kill = len(read_prediction_log(state_db))
        assert 0 < logged_at_kill < n, log.read_text()[-3000:]
        consumer = "worker-a" if recovery == "restart" else "worker-b"
        second = _start(registry, state_db, streams, redis_url, consumer, log)
        wait_for(lambda: len(read_prediction_log(state_db)) >= n or second.poll() is not None, timeout=300)
        wait_for(lambda: client.xinfo_groups(streams["transactions"])[0]["pending"] == 0, timeout=30)
        second.send_signal(signal.SIGTERM)  # graceful stop
        assert second.wait(timeout=20) == 0, log.read_text()[-3000:]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    predictions = read_prediction_log(state_db)
    assert len(predictions) == n  # none lost, none twice
    assert set(predictions["transaction_id"]) == {b["transaction_id"] for b in bodies}
    scores = [json.loads(f[b"data"]) for _, f in client.xrange(streams["scores"])]
    assert {s["transaction_id"] for s in scores} == {b["transaction_id"] for b in bodies}
    by_id: dict[int, float] = {}
    for s in scores:  # a result published twice (at least once) is the same result
        assert by_id.setdefault(s["transaction_id"], s["fraud_probability"]) == s["fraud_probability"]
    logged = predictions.set_index("transaction_id")["fraud_probability"].to_dict()
    assert logged == by_id
    assert client.xlen(streams["dead_letter"]) == 0
    text = log.read_text()
    if recovery == "restart":
        assert "took back" in text
    else:
        assert "claimed" in text
    assert "stream worker stopped" in text
    client.close()
