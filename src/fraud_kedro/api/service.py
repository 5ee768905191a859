"""Scoring: history look-up, features, inference pipeline, logging. No Flask here.

For a request of n transactions the service

1. reads from the state store the earlier transactions of their customers and terminals, only as far
   back as the model's feature windows reach;
2. computes their features with :func:`fraud_kedro.features.compute_features`, the function the
   batch pipeline uses, so the online features equal the training features (point in time);
3. runs the model's exported inference pipeline;
4. writes the transactions to the history and the predictions to the log in one transaction, and
   only then answers: an acknowledged score is never lost.

The optional shadow model scores a share of the same transactions after the answer is built; its
predictions go to ``prediction_log`` with role ``shadow`` and never to the client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from fraud_kedro.api.model_loader import LoadedModel, ModelHolder, ModelLoadError, check_predictions
from fraud_kedro.api.prometheus import Metrics
from fraud_kedro.api.scoring_errors import (
    ExplanationUnsupported,
    InvalidPredictions,
    NoModelInService,
    StoreUnavailable,
    TransactionConflict,
)
from fraud_kedro.api.validation import Label, Transaction, utc_now
from fraud_kedro.explain import reasons
from fraud_kedro.features import FeatureParams, HistoryWindow, compute_features
from fraud_kedro.store import DuplicateTransactionError, History, StateStore, StateStoreError

logger = logging.getLogger(__name__)

_KNUTH = 2_654_435_761
_2_32 = 2**32


@dataclass(frozen=True)
class ScoreResult:
    """What ``POST /score`` answers.

    Attributes:
        model_name: Model name.
        model_version: Model version.
        transaction_ids: Ids, in request order.
        probabilities: Fraud probabilities.
        decisions: Decisions.
        replayed: True when every transaction had already been scored with the same fields and
            the logged results are returned (idempotent retry).
    """

    model_name: str
    model_version: str
    transaction_ids: list[int]
    probabilities: list[float]
    decisions: list[bool]
    replayed: bool = False
    reasons: list[list[dict[str, Any]]] | None = None

    def to_json(self) -> dict[str, Any]:
        """The response body (each result has ``reasons`` when they were asked for)."""
        results = [
            {"transaction_id": i, "fraud_probability": p, "is_fraud_predicted": d}
            for i, p, d in zip(self.transaction_ids, self.probabilities, self.decisions, strict=True)
        ]
        if self.reasons is not None:
            for result, reasons in zip(results, self.reasons, strict=True):
                result["reasons"] = reasons
        return {"model": {"name": self.model_name, "version": self.model_version},
                "results": results}

    def part(self, start: int, end: int, explain: bool) -> ScoreResult:
        """The results ``start:end`` (one request of a merged call), reasons only if asked."""
        return ScoreResult(
            self.model_name,
            self.model_version,
            self.transaction_ids[start:end],
            self.probabilities[start:end],
            self.decisions[start:end],
            self.replayed,
            self.reasons[start:end] if explain and self.reasons is not None else None,
        )


def explain_scores(model: LoadedModel, matrix: np.ndarray, top_k: int = 5) -> list[list[dict]]:
    """Reasons for each row of ``matrix`` (the model's features), from the served model.

    The contributions are to the served probability's log-odds (:mod:`fraud_kedro.explain`).
    Only called for ``explain=true``: the default path pays nothing.
    """
    fraud_model = model.constants.get("fraud_model")
    if fraud_model is None:
        raise ExplanationUnsupported()
    return reasons(fraud_model, list(model.features), matrix, top_k)


def _id_column(past: np.ndarray, new: list[int | str]) -> tuple[Any, Any]:
    """History and new id columns of one type: int64 when every id is an int, else object."""
    if past.dtype == np.int64 and all(type(v) is int for v in new):
        return past, np.fromiter(new, dtype=np.int64, count=len(new))
    # text ids: object Series (pandas 3 would turn an object array into its string dtype)
    return (
        pd.Series(past.astype(object), dtype=object),
        pd.Series(np.array(new, dtype=object), dtype=object),
    )


def build_frames(
    transactions: Sequence[Transaction], history: History, params: FeatureParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The new transactions and their history as :func:`compute_features` inputs.

    Customer and terminal ids are the canonical keys (``17`` and ``"17"`` are the same card),
    int64 when all are integers, as in the training data. The label column is in both frames
    (unknown = NaN), which keeps the concatenation cheap and changes no feature.

    Args:
        transactions: Validated transactions.
        history: Their history rows.
        params: Feature parameters (column names).

    Returns:
        ``(new, history)`` frames.
    """
    c = params.columns
    n = len(transactions)
    past_customers, new_customers = _id_column(
        history.customer_key, [t.customer_key for t in transactions]
    )
    past_terminals, new_terminals = _id_column(
        history.terminal_key, [t.terminal_key for t in transactions]
    )
    new = pd.DataFrame(
        {
            c.transaction_id: np.fromiter((t.transaction_id for t in transactions), np.int64, n),
            c.timestamp: np.fromiter((t.ts_us for t in transactions), np.int64, n).astype(
                "datetime64[us]"
            ),
            c.customer_id: new_customers,
            c.terminal_id: new_terminals,
            c.amount: np.fromiter((t.amount for t in transactions), np.float64, n),
            c.label: np.full(n, np.nan),
        }
    )
    past = pd.DataFrame(
        {
            c.transaction_id: history.transaction_id,
            c.timestamp: history.ts_us.astype("datetime64[us]"),
            c.customer_id: past_customers,
            c.terminal_id: past_terminals,
            c.amount: history.amount,
            c.label: history.is_fraud,
        }
    )
    return new, past


def in_share(transaction_id: int, share: float) -> bool:
    """Deterministic pick of a ``share`` of transactions (the same id always gets the same answer)."""
    if share >= 1.0:
        return True
    if share <= 0.0:
        return False
    return ((transaction_id * _KNUTH) % _2_32) / _2_32 < share


class ScoringService:
    """Scores transactions and records feedback against a state store.

    Args:
        store: Returns the state store (or raises :class:`StateStoreError` while it is down).
        champion: The model in service.
        metrics: Prometheus metrics.
        shadow: Optional challenger in shadow mode.
        shadow_share: Share of transactions the shadow scores.
        history_reader: Returns what answers history look-ups (the worker's history cache);
            None reads the store.
    """

    def __init__(
        self,
        store: Any,
        champion: ModelHolder,
        metrics: Metrics,
        shadow: ModelHolder | None = None,
        shadow_share: float = 1.0,
        history_reader: Any = None,
    ) -> None:
        self._store = store
        self._history_reader = history_reader
        self.champion = champion
        self.shadow = shadow
        self.shadow_share = shadow_share
        self.metrics = metrics

    def store(self) -> StateStore:
        """The state store, or :class:`StoreUnavailable`."""
        try:
            return self._store()
        except StateStoreError as exc:
            self.metrics.store_errors.labels("open").inc()
            raise StoreUnavailable(exc) from exc

    def _features(
        self,
        store: StateStore,
        transactions: Sequence[Transaction],
        params: FeatureParams,
        exclude_ids: set[int] | None = None,
    ) -> pd.DataFrame:
        window = HistoryWindow.for_batch([t.ts_us for t in transactions], params)
        try:
            reader = self._history_reader() if self._history_reader is not None else store
            history = reader.history(
                [t.customer_key for t in transactions],
                [t.terminal_key for t in transactions],
                window,
            )
        except StateStoreError as exc:
            self.metrics.store_errors.labels("history_read").inc()
            raise StoreUnavailable(exc) from exc
        if exclude_ids and len(history):
            keep = ~np.isin(history.transaction_id, np.fromiter(exclude_ids, np.int64))
            history = History(*(col[keep] for col in history))
        new, past = build_frames(transactions, history, params)
        return compute_features(new, params, past)

    def warm_up(self, rounds: int = 3) -> float:
        """Fill this worker's history cache and run dummy predictions (nothing is logged).

        The first look-up loads the cache and the first predictions pay for lazy imports and
        allocations: done here before the worker takes traffic, not on the first requests.

        Args:
            rounds: Dummy predictions to run.

        Returns:
            Seconds spent.

        Raises:
            StateStoreError: The store cannot be read.
        """
        started = time.perf_counter()
        model = self.champion.current
        if model is None:
            return 0.0
        store = self.store()
        now = utc_now()
        ts_us = int((now - datetime(1970, 1, 1)).total_seconds() * 1_000_000)
        dummy = Transaction(-1, ts_us, now, -1, -1, -1, -1, 1.0)
        for _ in range(rounds):
            features = self._features(store, [dummy], model.feature_params)
            model.predict(features)
        return time.perf_counter() - started

    def score(
        self, transactions: Sequence[Transaction], replay: bool = True, explain: bool = False
    ) -> tuple[ScoreResult, Any]:
        """Score validated transactions and log them.

        Args:
            transactions: Validated, distinct transactions.
            replay: Answer known ids from the log (or 409); False raises instead.
            explain: Add the reasons of each score (logged with it).

        Returns:
            The result, and a callable that runs the shadow model (or None); call it after the
            answer is sent.

        Raises:
            NoModelInService: Without a model. StoreUnavailable: When the store fails.
            TransactionConflict: Ids already scored with other fields. InvalidPredictions:
                When the model fails (the status codes: :mod:`fraud_kedro.api.errors`).
            DuplicateTransactionError: Known ids with ``replay=False`` (nothing written).
        """
        model = self.champion.current
        if model is None:
            raise NoModelInService(self.champion.last_error)
        store = self.store()
        features = self._features(store, transactions, model.feature_params)
        ids = features[model.feature_params.columns.transaction_id].to_numpy()
        try:
            proba, decisions = check_predictions(model.predict(features), ids, model.uri)
        except ModelLoadError as exc:
            logger.error("model %s failed on a request: %s", model.version, exc)
            raise InvalidPredictions(exc) from exc
        matrix = features[list(model.features)].to_numpy(dtype=np.float64)
        explained = explain_scores(model, matrix) if explain else None
        try:
            store.record_scores(transactions, matrix, proba, decisions, model.ref, utc_now(),
                                **({"reasons": explained} if explained is not None else {}))
        except DuplicateTransactionError as exc:
            if not replay:
                raise
            return self._replay(store, transactions, exc.ids), None
        except StateStoreError as exc:
            self.metrics.store_errors.labels("prediction_log_write").inc()
            raise StoreUnavailable(exc) from exc
        n_fraud = int(decisions.sum())
        self.metrics.scored.labels(model.version, "fraud").inc(n_fraud)
        self.metrics.scored.labels(model.version, "legit").inc(len(decisions) - n_fraud)
        hist = self.metrics.probability.labels(model.version)
        for p in proba.tolist() if len(proba) <= 1000 else proba[:: len(proba) // 1000].tolist():
            hist.observe(p)
        result = ScoreResult(
            model.name,
            model.version,
            [t.transaction_id for t in transactions],
            proba.tolist(),
            decisions.tolist(),
            reasons=explained,
        )
        return result, self._shadow_job(store, transactions, model, features)

    def _replay(
        self, store: StateStore, transactions: Sequence[Transaction], known: list[int]
    ) -> ScoreResult:
        """Answer a retry of already-scored transactions from the log, or 409."""
        try:
            logged = store.logged_predictions([t.transaction_id for t in transactions])
        except StateStoreError as exc:
            raise StoreUnavailable(exc) from exc
        details = []
        for i, tx in enumerate(transactions):
            entry = logged.get(tx.transaction_id)
            same = entry is not None and (
                entry.timestamp == tx.timestamp.isoformat(timespec="microseconds")
                and entry.customer_id == tx.customer_id
                and entry.terminal_id == tx.terminal_id
                and entry.amount == tx.amount
            )
            if not same:
                reason = (
                    "already scored with different fields"
                    if entry is not None
                    else "already in the history"
                    if tx.transaction_id in known
                    else "not scored yet, but part of a batch with already-known ids"
                )
                details.append({"field": f"transactions[{i}].transaction_id", "message": reason})
        if details:
            raise TransactionConflict(details)
        first = logged[transactions[0].transaction_id]
        return ScoreResult(
            first.model_name,
            first.model_version,
            [t.transaction_id for t in transactions],
            [logged[t.transaction_id].fraud_probability for t in transactions],
            [logged[t.transaction_id].is_fraud_predicted for t in transactions],
            replayed=True,
        )

    def _shadow_job(
        self,
        store: StateStore,
        transactions: Sequence[Transaction],
        champion: LoadedModel,
        champion_features: pd.DataFrame,
    ) -> Any:
        shadow = self.shadow.current if self.shadow is not None else None
        if shadow is None:
            return None
        picked = [i for i, t in enumerate(transactions) if in_share(t.transaction_id, self.shadow_share)]
        if not picked:
            return None

        def run() -> None:
            started = time.perf_counter()
            try:
                rows = [transactions[i] for i in picked]
                if shadow.feature_params == champion.feature_params:
                    features = champion_features.iloc[picked].reset_index(drop=True)
                else:
                    exclude = {t.transaction_id for t in transactions}
                    features = self._features(store, transactions, shadow.feature_params, exclude)
                    features = features.iloc[picked].reset_index(drop=True)
                ids = features[shadow.feature_params.columns.transaction_id].to_numpy()
                proba, decisions = check_predictions(shadow.predict(features), ids, shadow.uri)
                matrix = features[list(shadow.features)].to_numpy(dtype=np.float64)
                store.record_shadow_scores(rows, matrix, proba, decisions, shadow.ref, utc_now())
                self.metrics.shadow_scored.labels(shadow.version).inc(len(rows))
            except Exception:  # the shadow never affects clients
                self.metrics.shadow_errors.inc()
                logger.exception("shadow model %s failed", shadow.version)
            logger.debug("shadow scoring took %.2f ms", (time.perf_counter() - started) * 1e3)

        return run

    def feedback(self, labels: Sequence[Label]) -> dict[str, int]:
        """Record labels: the label log, and ``is_fraud`` on the history rows.

        Args:
            labels: Validated labels.

        Returns:
            ``{"received": n, "matched": m}``: m of the ids are in the history.

        Raises:
            StoreUnavailable: When the state store fails.
        """
        store = self.store()
        try:
            matched = store.record_labels(labels, utc_now())
        except StateStoreError as exc:
            self.metrics.store_errors.labels("label_log_write").inc()
            raise StoreUnavailable(exc) from exc
        return {"received": len(labels), "matched": matched}


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
