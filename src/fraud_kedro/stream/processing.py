"""One micro-batch: validate each message, score the valid transactions in one call, build the
output records. No broker here: the worker commits what this returns.

Everything goes through the API's own code: :func:`~fraud_kedro.api.validation.parse_json` and
:func:`~fraud_kedro.api.validation.validate_score_request` (one message = the body of a
single-transaction ``POST /score``), :meth:`ScoringService.score` (features from the same history
store, same model, same prediction log, same shadow) and :meth:`ScoringService.feedback`.

Outcomes per message:

* a valid, new transaction: scored in the batch's one ``score`` call -> one record on the scores
  stream;
* a transaction already scored with the same fields (a redelivery, a duplicate, or one sent to
  ``POST /score`` before): the logged result is replayed, nothing is written twice;
* invalid JSON, an invalid transaction or label, or a known id with other fields (the API's 409):
  one record on the dead-letter stream with the original payload and the error.

Errors that are not the message's fault (state store or model unavailable: the API's 503, a model
failing: 500) raise :class:`RetryLater`; the worker commits nothing of the batch and retries it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fraud_kedro.api.errors import ApiError
from fraud_kedro.api.scoring_errors import (
    InvalidPredictions,
    NoModelInService,
    ScoringError,
    TransactionConflict,
)
from fraud_kedro.api.service import ScoreResult, ScoringService
from fraud_kedro.api.validation import (
    Label,
    Transaction,
    parse_json,
    utc_now,
    validate_feedback_request,
    validate_score_request,
)
from fraud_kedro.store import DuplicateTransactionError
from fraud_kedro.stream.broker import Message, Record

logger = logging.getLogger(__name__)

# dead-letter reasons (the label of fraud_stream_dead_lettered_total)
INVALID_JSON = "invalid_json"
INVALID_TRANSACTION = "invalid_transaction"
CONFLICT = "conflict"
INVALID_LABEL = "invalid_label"
TOO_MANY_DELIVERIES = "too_many_deliveries"
_MAX_PAYLOAD_CHARS = 65_536

#: A batch's results so far, by transaction id (the API's response item of each).
Results = dict[int, dict[str, Any]]
#: A batch's transactions that cannot be scored, by id, with the API's error.
Conflicts = dict[int, ApiError | ScoringError]


class RetryLater(RuntimeError):
    """The batch could not be processed for a reason that is not the messages' (nothing done)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class BatchOutcome:
    """What one micro-batch produced.

    Attributes:
        records: Score and dead-letter records to publish with the commit.
        scored: Transactions scored now.
        replayed: Transactions answered from the log (already scored).
        labels: Labels recorded.
        dead_lettered: Dead-letter counts by reason.
        after_commit: Jobs to run once committed (the shadow model).
    """

    records: list[Record] = field(default_factory=list)
    scored: int = 0
    replayed: int = 0
    labels: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def _error_of(exc: ApiError | ScoringError) -> tuple[str, list[Any]]:
    return exc.error, list(exc.details)


def _retry_later(exc: ScoringError) -> RetryLater:
    """A service failure that is not the messages' fault (the API's 5xx)."""
    kind = "model" if isinstance(exc, NoModelInService | InvalidPredictions) else "state_store"
    return RetryLater(kind, f"{type(exc).__name__}: {exc.error}")


@dataclass(eq=False)
class BatchProcessor:
    """Turns a batch of messages into output records through the scoring service.

    Args:
        service: The scoring service (the API's).
        transactions_stream: Name of the transactions input stream.
        labels_stream: Name of the labels input stream.
        scores_stream: Name of the scores output stream.
        dead_letter_stream: Name of the dead-letter output stream.
        max_amount: Largest accepted amount (the API's setting).
        max_deliveries: Messages delivered more often go to the dead letter unprocessed.
    """

    service: ScoringService
    transactions_stream: str
    labels_stream: str
    scores_stream: str
    dead_letter_stream: str
    max_amount: float
    max_deliveries: int = 5

    # -- dead letters -------------------------------------------------------------------------
    def _dead(self, out: BatchOutcome, msg: Message, reason: str, error: str, details: list[Any]) -> None:
        payload = None if msg.data is None else msg.data.decode("utf-8", errors="replace")
        if payload is not None and len(payload) > _MAX_PAYLOAD_CHARS:
            payload = payload[:_MAX_PAYLOAD_CHARS]
            details = [*details, {"field": "data", "message": "payload truncated in this record"}]
        body = {
            "stream": msg.stream,
            "message_id": msg.id,
            "reason": reason,
            "error": error,
            "details": details,
            "payload": payload,
            "dead_lettered_at": utc_now().isoformat(timespec="microseconds"),
        }
        out.records.append(Record(self.dead_letter_stream, json.dumps(body)))
        out.dead_lettered[reason] = out.dead_lettered.get(reason, 0) + 1

    def _parse(self, out: BatchOutcome, msg: Message) -> Any:
        """The message's JSON value, or None after dead-lettering it."""
        if msg.data is None:
            self._dead(
                out,
                msg,
                INVALID_JSON,
                "message has no data field",
                [{"field": "data", "message": "field required"}],
            )
            return None
        try:
            return parse_json(msg.data)
        except ApiError as exc:
            self._dead(out, msg, INVALID_JSON, *_error_of(exc))
            return None

    # -- the batch ----------------------------------------------------------------------------
    def process(self, messages: Sequence[Message]) -> BatchOutcome:
        """Process one micro-batch.

        Args:
            messages: Messages of the input streams, in stream order.

        Returns:
            The records to commit and the counts.

        Raises:
            RetryLater: The state store or the model failed; nothing of the batch may be committed.
        """
        out = BatchOutcome()
        transactions: list[tuple[Message, Transaction]] = []
        labels: list[Label] = []
        for msg in messages:
            if msg.deliveries > self.max_deliveries:
                self._dead(
                    out,
                    msg,
                    TOO_MANY_DELIVERIES,
                    f"delivered {msg.deliveries} times without being acknowledged",
                    [{"field": "message", "message": "it may crash the worker"}],
                )
                continue
            body = self._parse(out, msg)
            if body is None:
                continue
            if msg.stream == self.labels_stream:
                label = self._label(out, msg, body)
                if label is not None:
                    labels.append(label)
            else:
                tx = self._transaction(out, msg, body)
                if tx is not None:
                    transactions.append((msg, tx))
        if transactions:
            self._score(out, transactions)
        if labels:
            try:
                self.service.feedback(labels)
            except ScoringError as exc:
                raise _retry_later(exc) from exc
            out.labels = len(labels)
        return out

    def _transaction(self, out: BatchOutcome, msg: Message, body: Any) -> Transaction | None:
        if isinstance(body, dict) and "transactions" in body:
            self._dead(
                out,
                msg,
                INVALID_TRANSACTION,
                "one transaction per message",
                [{"field": "transactions", "message": "send each transaction as its own message"}],
            )
            return None
        try:
            (tx,), _ = validate_score_request(body, 1, self.max_amount)
        except ApiError as exc:
            self._dead(out, msg, INVALID_TRANSACTION, *_error_of(exc))
            return None
        return tx

    def _label(self, out: BatchOutcome, msg: Message, body: Any) -> Label | None:
        try:
            (label,) = validate_feedback_request({"labels": [body]}, 1)
        except ApiError as exc:  # fields named as in a one-label POST /feedback body
            self._dead(out, msg, INVALID_LABEL, *_error_of(exc))
            return None
        return label

    def _score(self, out: BatchOutcome, items: list[tuple[Message, Transaction]]) -> None:
        """Score distinct transactions in one call; replay or dead-letter the known ones."""
        first: dict[int, tuple[Message, Transaction]] = {}
        repeats: list[tuple[Message, Transaction]] = []
        for msg, tx in items:
            if tx.transaction_id in first:
                repeats.append((msg, tx))
            else:
                first[tx.transaction_id] = (msg, tx)
        # event-time order within the batch: features are point in time either way, and the
        # prediction log then follows the card's own order
        ordered = sorted(first.values(), key=lambda item: (item[1].ts_us, item[1].transaction_id))
        results: Results = {}
        conflicts: Conflicts = {}
        self._score_fresh(out, [tx for _, tx in ordered], results, conflicts)
        for msg, tx in ordered:
            self._emit(out, msg, tx, results, conflicts)
        for msg, tx in repeats:  # the same id twice in one batch
            original = first[tx.transaction_id][1]
            if tx.transaction_id in results and tx == original:
                out.replayed += 1
                self._emit(out, msg, tx, results, conflicts, replayed=True)
            else:
                error = conflicts.get(tx.transaction_id) or ApiError(
                    409,
                    "conflict: transaction id already in this batch with other fields",
                    [{"field": "transaction_id", "message": "already scored with different fields"}],
                )
                self._dead(out, msg, CONFLICT, *_error_of(error))

    def _emit(
        self,
        out: BatchOutcome,
        msg: Message,
        tx: Transaction,
        results: Results,
        conflicts: Conflicts,
        replayed: bool = False,
    ) -> None:
        if tx.transaction_id in conflicts and not replayed:
            self._dead(out, msg, CONFLICT, *_error_of(conflicts[tx.transaction_id]))
            return
        body = {**results[tx.transaction_id], "message_id": msg.id}
        if replayed:
            body["replayed"] = True
        out.records.append(Record(self.scores_stream, json.dumps(body), str(tx.customer_key)))

    def _collect(self, result: ScoreResult, results: Results) -> None:
        scored_at = utc_now().isoformat(timespec="microseconds")
        model = {"name": result.model_name, "version": result.model_version}
        for tid, p, d in zip(result.transaction_ids, result.probabilities, result.decisions, strict=True):
            results[tid] = {
                "transaction_id": tid,
                "fraud_probability": p,
                "is_fraud_predicted": d,
                "model": model,
                "scored_at": scored_at,
                "replayed": result.replayed,
            }

    def _call(self, out: BatchOutcome, transactions: list[Transaction], replay: bool) -> ScoreResult:
        """One ``score`` call; a conflict (the API's 409) passes, other failures become
        :class:`RetryLater`."""
        try:
            result, shadow = self.service.score(transactions, replay=replay)
        except (TransactionConflict, DuplicateTransactionError):
            raise
        except ScoringError as exc:
            raise _retry_later(exc) from exc
        if shadow is not None:
            out.after_commit.append(shadow)
        return result

    def _score_fresh(
        self,
        out: BatchOutcome,
        transactions: list[Transaction],
        results: Results,
        conflicts: Conflicts,
    ) -> None:
        todo = transactions
        known: list[Transaction] = []
        for _ in range(3):  # another worker or the API may log some of them meanwhile
            if not todo:
                break
            try:
                result = self._call(out, todo, replay=False)
            except DuplicateTransactionError as exc:
                ids = set(exc.ids)
                known.extend(t for t in todo if t.transaction_id in ids)
                todo = [t for t in todo if t.transaction_id not in ids]
                continue
            self._collect(result, results)
            out.scored += len(todo)
            todo = []
        known.extend(todo)  # still racing after 3 rounds: settle them one by one below
        if known:
            self._replay(out, known, results, conflicts)

    def _replay(
        self,
        out: BatchOutcome,
        known: list[Transaction],
        results: Results,
        conflicts: Conflicts,
    ) -> None:
        """Known ids: the logged result when the fields match, else the API's 409."""
        try:
            result = self._call(out, known, replay=True)
            self._collect(result, results)
            out.replayed += len(known) if result.replayed else 0
            out.scored += 0 if result.replayed else len(known)
            return
        except TransactionConflict:  # 409 for some of them: settle each one alone
            pass
        for tx in known:
            try:
                result = self._call(out, [tx], replay=True)
            except TransactionConflict as exc:
                conflicts[tx.transaction_id] = exc
                continue
            self._collect(result, results)
            if result.replayed:
                out.replayed += 1
            else:
                out.scored += 1
