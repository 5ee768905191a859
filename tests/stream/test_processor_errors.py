"""The processor sorts the scoring service's domain errors: a conflict is the message's fault
(dead letter), a store or model failure is not (retry the whole batch)."""

from __future__ import annotations

import json

import pytest

from fraud_kedro.api.scoring_errors import NoModelInService, StoreUnavailable, TransactionConflict
from fraud_kedro.store import DuplicateTransactionError
from fraud_kedro.stream.broker import Message
from fraud_kedro.stream.processing import BatchProcessor, RetryLater

TX = {
    "transaction_id": 7,
    "timestamp": "2018-04-01T10:00:00",
    "customer_id": 1,
    "terminal_id": 2,
    "amount": 12.5,
}


class _Raising:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    def score(self, transactions, replay=False):
        self.calls += 1
        raise self.exc

    def feedback(self, labels):
        raise self.exc


def _processor(service) -> BatchProcessor:
    return BatchProcessor(service, "t", "l", "s", "d", 1e9)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [(StoreUnavailable(OSError("disk full")), "state_store"), (NoModelInService(None), "model")],
)
def test_service_failures_retry_the_batch(exc, kind):
    with pytest.raises(RetryLater) as info:
        _processor(_Raising(exc)).process([Message("t", "1-0", json.dumps(TX).encode())])
    assert info.value.kind == kind


def test_label_store_failure_retries_the_batch():
    label = json.dumps({"transaction_id": 7, "is_fraud": 1}).encode()
    with pytest.raises(RetryLater):
        _processor(_Raising(StoreUnavailable(OSError("gone")))).process([Message("l", "1-0", label)])


def test_a_conflict_is_dead_lettered_not_retried():
    class KnownWithOtherFields(_Raising):
        def score(self, transactions, replay=False):
            raise self.exc if replay else DuplicateTransactionError([7])

    conflict = TransactionConflict([{"field": "transaction_id", "message": "7 known with other fields"}])
    service = KnownWithOtherFields(conflict)
    outcome = _processor(service).process([Message("t", "1-0", json.dumps(TX).encode())])
    assert outcome.dead_lettered == {"conflict": 1}
    record = json.loads(outcome.records[0].data)
    assert record["reason"] == "conflict" and record["details"][0]["field"] == "transaction_id"
