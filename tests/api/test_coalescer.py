"""Concurrent requests of one worker are scored together, each getting exactly its own answer."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import make_config
from test_scoring import as_body

from fraud_kedro.api import create_app, read_prediction_log
from fraud_kedro.api.errors import ApiError
from fraud_kedro.api.service import Coalescer, ScoreResult
from fraud_kedro.api.validation import validate_score_request
from fraud_kedro.store import DuplicateTransactionError


def _txs(*ids: int):
    body = {"transactions": [
        {"transaction_id": i, "timestamp": "2018-05-25T12:00:00", "customer_id": 1,
         "terminal_id": 1, "amount": 1.0} for i in ids
    ]}
    return validate_score_request(body, 100, 1e9)[0]


class StubService:
    """Scores slowly, records the calls; ids >= 900 are 'already known'."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def score(self, transactions, replay=True):
        ids = [t.transaction_id for t in transactions]
        with self.lock:
            self.calls.append(ids)
        time.sleep(0.05)
        if self.fail:
            raise ApiError(503, "store down")
        if any(i >= 900 for i in ids):
            if not replay:
                raise DuplicateTransactionError([i for i in ids if i >= 900])
            raise ApiError(409, "conflict")
        return ScoreResult("m", "1", ids, [i / 1000 for i in ids], [False] * len(ids)), "shadow"


def _submit_all(coalescer, requests):
    barrier = threading.Barrier(len(requests))

    def run(txs):
        barrier.wait()
        try:
            return coalescer.submit(txs)
        except ApiError as exc:
            return exc

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(run, requests))


def test_waiting_requests_are_merged_and_split_back():
    service = StubService()
    coalescer = Coalescer(service, max_batch=100)
    requests = [_txs(i, i + 100) for i in range(1, 9)]
    answers = _submit_all(coalescer, requests)
    for txs, (result, _) in zip(requests, answers, strict=True):
        assert result.transaction_ids == [t.transaction_id for t in txs]
        assert result.probabilities == [t.transaction_id / 1000 for t in txs]
    assert len(service.calls) < len(requests)  # some calls merged several requests
    assert sorted(i for call in service.calls for i in call) == sorted(
        t.transaction_id for txs in requests for t in txs
    )
    assert sum(shadow == "shadow" for _, shadow in answers) == len(service.calls)


def test_same_ids_are_never_merged_and_conflicts_are_per_request():
    service = StubService()
    coalescer = Coalescer(service, max_batch=100)
    requests = [_txs(1), _txs(1), _txs(2), _txs(950), _txs(3)]
    answers = _submit_all(coalescer, requests)
    assert all(sorted(set(call)) == sorted(call) for call in service.calls)
    assert isinstance(answers[3], ApiError) and answers[3].status == 409
    assert [a[0].transaction_ids for i, a in enumerate(answers) if i != 3] == [[1], [1], [2], [3]]


def test_a_failure_reaches_every_merged_request():
    coalescer = Coalescer(StubService(fail=True), max_batch=100)
    answers = _submit_all(coalescer, [_txs(i) for i in range(1, 6)])
    assert all(isinstance(a, ApiError) and a.status == 503 for a in answers)


@pytest.mark.parametrize("max_batch", [1, 3])
def test_batches_respect_the_maximum(max_batch):
    service = StubService()
    _submit_all(Coalescer(service, max_batch=max_batch), [_txs(i) for i in range(1, 8)])
    assert max(len(call) for call in service.calls) <= max_batch


def test_concurrent_requests_on_the_app_are_all_answered_and_logged(registry, state_db, held_out):
    app = create_app(make_config(registry, state_db))
    bodies = [as_body(r) for r in held_out.iloc[:64].itertuples()]

    def post(body):
        return app.test_client().post("/score", json=body)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, bodies))
    assert [r.status_code for r in responses] == [200] * len(bodies)
    assert [r.get_json()["results"][0]["transaction_id"] for r in responses] == [
        b["transaction_id"] for b in bodies
    ]
    assert sorted(read_prediction_log(state_db)["transaction_id"]) == sorted(
        b["transaction_id"] for b in bodies
    )
