"""The worker scores what POST /score scores: N in, N results out, N log rows, same probabilities."""

from __future__ import annotations

import json
import shutil

import redis
from streamkit import WorkerThread, as_tx, serving_config, stream_config, wait_for

from fraud_kedro.api import create_app, read_label_log, read_prediction_log
from fraud_kedro.stream.runner import build_worker


def _publish(client: redis.Redis, stream: str, bodies: list) -> None:
    with client.pipeline(transaction=False) as pipe:
        for body in bodies:
            pipe.xadd(stream, {"data": body if isinstance(body, bytes | str) else json.dumps(body)})
        pipe.execute()


def _results(client: redis.Redis, stream: str) -> list[dict]:
    return [json.loads(fields[b"data"]) for _, fields in client.xrange(stream)]


def test_n_in_n_out_equal_to_post_score(
    registry, redis_url, streams, state_db, seeded_template, tmp_path, held_out
):
    client = redis.Redis.from_url(redis_url)
    rows = held_out.head(300)
    bodies = [as_tx(r) for r in rows.itertuples()]
    _publish(client, streams["transactions"], bodies)
    worker = WorkerThread(build_worker(stream_config(redis_url, streams), serving_config(registry, state_db)))
    try:
        wait_for(lambda: client.xlen(streams["scores"]) >= len(bodies))
        lag = worker.running.broker.lag()[streams["transactions"]]
    finally:
        worker.stop()
    results = _results(client, streams["scores"])
    assert len(results) == len(bodies)
    assert sorted(r["transaction_id"] for r in results) == sorted(b["transaction_id"] for b in bodies)
    assert {r["model"]["name"] for r in results} == {"fraud_detector"}
    assert {r["model"]["version"] for r in results} == {registry["champion"]}
    assert all(r["scored_at"] and r["replayed"] is False for r in results)
    assert lag.pending == 0 and lag.length == len(bodies)
    log = read_prediction_log(state_db)
    assert len(log) == len(bodies) and log["transaction_id"].is_unique

    # the same transactions through POST /score, one request each, on a fresh store
    fresh = shutil.copyfile(seeded_template, tmp_path / "fresh.db")
    api = create_app(serving_config(registry, fresh)).test_client()
    expected = {}
    for body in bodies:
        response = api.post("/score", json=body)
        assert response.status_code == 200, response.data
        item = response.get_json()["results"][0]
        expected[item["transaction_id"]] = (item["fraud_probability"], item["is_fraud_predicted"])
    got = {r["transaction_id"]: (r["fraud_probability"], r["is_fraud_predicted"]) for r in results}
    assert got == expected  # bit for bit
    by_id = log.set_index("transaction_id")["fraud_probability"].to_dict()
    assert by_id == {k: v[0] for k, v in expected.items()}
    assert len({p for p, _ in expected.values()}) > 50  # varied probabilities, not a constant
    client.close()


def test_rest_then_stream_is_one_transaction_and_labels_take_the_feedback_path(
    registry, redis_url, streams, state_db, held_out
):
    client = redis.Redis.from_url(redis_url)
    bodies = [as_tx(r) for r in held_out.head(40).itertuples()]
    api = create_app(serving_config(registry, state_db)).test_client()
    rest = api.post("/score", json={"transactions": bodies[:20]}).get_json()["results"]
    _publish(client, streams["transactions"], bodies + bodies[:5])  # 5 duplicated messages
    labels = [{"transaction_id": b["transaction_id"], "is_fraud": i % 2} for i, b in enumerate(bodies[:10])]
    _publish(client, streams["labels"], labels)
    worker = WorkerThread(build_worker(stream_config(redis_url, streams), serving_config(registry, state_db)))
    try:
        wait_for(lambda: client.xlen(streams["scores"]) >= 45)
        wait_for(lambda: len(read_label_log(state_db)) >= 10)
    finally:
        worker.stop()
    results = _results(client, streams["scores"])
    assert len(results) == 45 and client.xlen(streams["dead_letter"]) == 0
    log = read_prediction_log(state_db)
    assert len(log) == 40 and log["transaction_id"].is_unique  # REST + stream: one transaction each
    rest_by_id = {r["transaction_id"]: r["fraud_probability"] for r in rest}
    for r in results:
        if r["transaction_id"] in rest_by_id:
            assert r["replayed"] is True
            assert r["fraud_probability"] == rest_by_id[r["transaction_id"]]
    assert sum(r["replayed"] for r in results) == 25  # 20 from REST, 5 duplicated messages
    label_log = read_label_log(state_db)
    assert sorted(label_log["transaction_id"]) == sorted(lab["transaction_id"] for lab in labels)
    client.close()
