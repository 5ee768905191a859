"""The coalescer: merges the ``/score`` requests that wait at the same time in one worker into one
scoring call (see :class:`Coalescer`). No Flask here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fraud_kedro.api.score_frames import ScoreResult
from fraud_kedro.api.validation import Transaction
from fraud_kedro.store import DuplicateTransactionError

if TYPE_CHECKING:
    from fraud_kedro.api.service import ScoringService

class _Job:
    """One request's transactions waiting in a :class:`Coalescer`."""

    __slots__ = ("done", "error", "explain", "ids", "result", "shadow", "transactions")

    def __init__(self, transactions: Sequence[Transaction], explain: bool = False) -> None:
        self.transactions = transactions
        self.explain = explain
        self.ids = {t.transaction_id for t in transactions}
        self.done = False
        self.result: ScoreResult | None = None
        self.shadow: Any = None
        self.error: BaseException | None = None


class Coalescer:
    """Merges the ``/score`` requests that wait at the same time in one worker into one call.

    Scoring costs mostly a fixed amount per call (pandas, the model's tree walk), so under load
    requests that arrive while the worker is busy are scored together: the first waiting request
    thread becomes the leader, takes every queued request (up to ``max_batch`` transactions, ids
    distinct), scores them in one call and hands each request its own results. Nothing waits on
    purpose: an idle worker scores a request at once, by itself. With gunicorn's sync workers
    there is never more than one request per worker and this is a plain call.

    Transactions merged in one call see each other as earlier history when they are earlier,
    exactly as a batch does. A merged call that meets an already-known id is replayed request by
    request, so each request gets its own replay or 409.

    Args:
        service: The scoring service.
        max_batch: Largest number of transactions merged.
    """

    def __init__(self, service: ScoringService, max_batch: int) -> None:
        self.service = service
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._busy = False
        self.merged_calls = 0

    def submit(
        self, transactions: Sequence[Transaction], explain: bool = False
    ) -> tuple[ScoreResult, Any]:
        """Score one request's transactions (possibly together with others).

        A merged call is explained when one of its requests asks (``explain``); only those
        requests get the reasons in their answer.

        Returns:
            As :meth:`ScoringService.score`.

        Raises:
            ScoringError: As :meth:`ScoringService.score`.
        """
        job = _Job(transactions, explain)
        with self._cond:
            self._queue.append(job)
            while self._busy and not job.done:
                self._cond.wait()
            if not job.done:
                self._busy = True  # this thread leads until its own request is scored
        while not job.done:
            with self._cond:
                batch = self._take()
            try:
                self._run(batch)
            finally:
                with self._cond:
                    if job.done:
                        self._busy = False
                    self._cond.notify_all()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result, job.shadow

    def _take(self) -> list[_Job]:
        """Queued requests, oldest first, up to ``max_batch`` transactions with distinct ids."""
        batch: list[_Job] = []
        ids: set[int] = set()
        size = 0
        for job in list(self._queue):
            if batch and (size + len(job.transactions) > self.max_batch or ids & job.ids):
                continue
            batch.append(job)
            ids |= job.ids
            size += len(job.transactions)
        for job in batch:
            self._queue.remove(job)
        return batch

    def _run(self, batch: list[_Job]) -> None:
        if len(batch) == 1:
            self._run_one(batch[0])
            return
        merged = [t for job in batch for t in job.transactions]
        try:
            result, shadow = self.service.score(
                merged, replay=False, explain=any(job.explain for job in batch)
            )
        except DuplicateTransactionError:
            for job in batch:  # some ids are known: each request gets its own replay or 409
                self._run_one(job)
            return
        except BaseException as exc:  # the same failure for every merged request
            for job in batch:
                job.error, job.done = exc, True
            return
        self.merged_calls += 1
        start = 0
        for i, job in enumerate(batch):
            end = start + len(job.transactions)
            job.result = result.part(start, end, job.explain)
            job.shadow = shadow if i == 0 else None
            job.done = True
            start = end

    def _run_one(self, job: _Job) -> None:
        try:
            job.result, job.shadow = self.service.score(job.transactions, explain=job.explain)
        except BaseException as exc:
            job.error = exc
        job.done = True
