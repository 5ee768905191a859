"""Bad messages never block: each kind reaches the dead-letter stream, the good ones around it are
scored, and a restarted consumer takes back what it had not acknowledged."""

from __future__ import annotations

import json
import urllib.request

import pytest
import redis
from streamkit import WorkerThread, as_tx, serving_config, stream_config, wait_for

from fraud_kedro.api import read_prediction_log
from fraud_kedro.stream.broker import Message
from fraud_kedro.stream.processing import BatchProcessor
from fraud_kedro.stream.redis_broker import RedisStreamsBroker
from fraud_kedro.stream.runner import build_worker
from fraud_kedro.stream.telemetry import get_stream_metrics


def _counter(counter, *labels) -> float:
    return counter.labels(*labels)._value.get() if labels else counter._value.get()


@pytest.mark.parametrize("batch_size", [64, 1])
def test_every_kind_of_bad_message_is_dead_lettered(
    registry, redis_url, streams, state_db, held_out, batch_size
):
    client = redis.Redis.from_url(redis_url)
    good = [as_tx(r) for r in held_out.head(30).itertuples()]
    conflicting = {**good[3], "amount": good[3]["amount"] + 1.0}
    bad = {
        "invalid_json": b'{"transaction_id": 1, ',
        "not_utf8": b"\xff\xfe{}",
        "nan": json.dumps(good[0]).replace(str(good[0]["amount"]), "NaN"),
        "negative_amount": json.dumps({**good[0], "transaction_id": 9_000_001, "amount": -1}),
        "unknown_field": json.dumps({**good[0], "transaction_id": 9_000_002, "is_fraud": 1}),
        "missing_field": json.dumps({k: v for k, v in good[0].items() if k != "timestamp"}),
        "batch_body": json.dumps({"transactions": good[:2]}),
        "array": json.dumps([good[0]]),
        "conflict": json.dumps(conflicting),  # same id as good[3], other amount: the API's 409
    }
    order = []  # good and bad interleaved
    for i, body in enumerate(good):
        order.append(("good", json.dumps(body)))
        if i < len(bad):
            order.append(list(bad.items())[i])
    with client.pipeline(transaction=False) as pipe:
        for _, data in order:
            pipe.xadd(streams["transactions"], {"data": data})
        pipe.xadd(streams["transactions"], {"other": "no data field"})
        pipe.xadd(streams["labels"], {"data": json.dumps({"transaction_id": 1, "is_fraud": 2})})
        pipe.xadd(streams["labels"], {"data": "not json"})
        pipe.execute()
    metrics = get_stream_metrics()
    before = {
        r: _counter(metrics.dead_lettered, r) for r in ("invalid_json", "invalid_transaction", "conflict")
    }
    worker = WorkerThread(
        build_worker(
            stream_config(redis_url, streams, batch_size=batch_size), serving_config(registry, state_db)
        )
    )
    try:
        wait_for(lambda: client.xlen(streams["dead_letter"]) >= len(bad) + 3)
        wait_for(lambda: client.xlen(streams["scores"]) >= len(good))
        port = worker.running.telemetry.port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            health = json.loads(r.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            exposition = r.read().decode()
        lag = worker.running.broker.lag()
    finally:
        worker.stop()
    dead = [json.loads(f[b"data"]) for _, f in client.xrange(streams["dead_letter"])]
    assert len(dead) == len(bad) + 3
    assert all(d["error"] and d["message_id"] and "payload" in d for d in dead)
    payloads = {d["payload"] for d in dead}
    for name, data in bad.items():
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        assert text in payloads, name
    conflict = next(d for d in dead if d["reason"] == "conflict")
    assert json.loads(conflict["payload"]) == conflicting
    fields = {d["field"] for x in dead for d in x["details"] if isinstance(d, dict)}
    assert {"amount", "is_fraud", "timestamp", "data", "transactions"} <= fields
    assert sorted(d["reason"] for d in dead) == sorted(
        ["invalid_json"] * 3  # broken JSON, not UTF-8, no data field
        + ["invalid_transaction"] * 6  # NaN, negative, unknown field, missing field, batch, array
        + ["conflict"]
        + ["invalid_label"] * 1
        + ["invalid_json"] * 1  # the label that is not JSON
    )
    scores = [json.loads(f[b"data"]) for _, f in client.xrange(streams["scores"])]
    assert sorted(s["transaction_id"] for s in scores) == sorted(b["transaction_id"] for b in good)
    log = read_prediction_log(state_db)
    assert len(log) == len(good)
    assert all(v.pending == 0 for v in lag.values())  # everything acknowledged
    assert _counter(metrics.dead_lettered, "invalid_json") - before["invalid_json"] == 4
    assert _counter(metrics.dead_lettered, "conflict") - before["conflict"] == 1
    assert health["status"] == "ok"
    for name in (
        "fraud_stream_consumed_total",
        "fraud_stream_scored_total",
        "fraud_stream_dead_lettered_total",
        "fraud_stream_redelivered_total",
        "fraud_stream_pending",
        "fraud_stream_length",
        "fraud_stream_lag",
        "fraud_stream_batch_duration_seconds_bucket",
    ):
        assert name in exposition, name
    client.close()


def test_a_restarted_consumer_takes_back_its_unacknowledged_messages(redis_url, streams):
    client = redis.Redis.from_url(redis_url)
    ids = [client.xadd(streams["transactions"], {"data": str(i)}).decode() for i in range(5)]
    first = RedisStreamsBroker(redis_url, [streams["transactions"]], streams["group"], "c1")
    got = first.fetch(3, 10)
    assert [m.id for m in got] == ids[:3] and not any(m.redelivered for m in got)
    first.close()  # "crash": fetched, never committed
    again = RedisStreamsBroker(redis_url, [streams["transactions"]], streams["group"], "c1")
    back = again.fetch(10, 10)
    assert [m.id for m in back] == ids[:3] and all(m.redelivered for m in back)
    rest = again.fetch(10, 10)
    assert [m.id for m in rest] == ids[3:] and not any(m.redelivered for m in rest)
    again.commit(back + rest, [])
    assert again.lag()[streams["transactions"]].pending == 0
    assert again.fetch(10, 10) == []
    again.close()
    client.close()


def test_stale_messages_are_claimed_and_poison_ones_dead_lettered(redis_url, streams):
    client = redis.Redis.from_url(redis_url)
    client.xadd(streams["transactions"], {"data": "x"})
    a = RedisStreamsBroker(redis_url, [streams["transactions"]], streams["group"], "a", claim_idle_ms=50)
    b = RedisStreamsBroker(redis_url, [streams["transactions"]], streams["group"], "b", claim_idle_ms=50)
    assert len(a.fetch(10, 10)) == 1
    assert b.claim_stale(10) == []  # not idle long enough yet
    claimed = []
    wait_for(lambda: bool(claimed.extend(b.claim_stale(10)) or claimed), timeout=5)
    assert len(claimed) == 1 and claimed[0].redelivered and claimed[0].deliveries == 2
    assert b.lag()[streams["transactions"]].pending == 1
    a.close()
    b.close()

    # a message that keeps killing its workers goes to the dead letter, unprocessed
    processor = BatchProcessor(None, "t", "l", "s", "d", 1e9, max_deliveries=5)
    outcome = processor.process([Message("t", "1-0", b"{}", True, deliveries=6)])
    assert outcome.dead_lettered == {"too_many_deliveries": 1}
    assert json.loads(outcome.records[0].data)["payload"] == "{}"
    client.close()
