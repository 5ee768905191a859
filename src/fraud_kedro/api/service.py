"""Scoring: history look-up, features, inference pipeline, logging. No Flask here.

For a request of n transactions the service

1. reads from the state store the earlier transactions of their customers and terminals, only as far
   back as the model's feature windows reach;
2. computes their features with :func:`fraud_kedro.features.compute_features`, the function the
   batch pipeline uses, so the online features equal the training features (point in time);
3. runs the model's exported inference pipeline;
4. writes the transactions to the history and the predictions to the log in one transaction, and
   only then answers: an acknowledged score is never lost.

The request coalescer is :mod:`fraud_kedro.api.coalescer`; the answer and the feature frames are
:mod:`fraud_kedro.api.score_frames`. The optional shadow model scores a share of the same
transactions after the answer is built; its predictions go to ``prediction_log`` with role
``shadow`` and never to the client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from fraud_kedro.api.coalescer import Coalescer
from fraud_kedro.api.model_loader import LoadedModel, ModelHolder, ModelLoadError, check_predictions
from fraud_kedro.api.prometheus import Metrics
from fraud_kedro.api.score_frames import ScoreResult, build_frames, explain_scores, in_share
from fraud_kedro.api.scoring_errors import (
    InvalidPredictions,
    NoModelInService,
    StoreUnavailable,
    TransactionConflict,
)
from fraud_kedro.api.validation import Label, Transaction, utc_now
from fraud_kedro.features import FeatureParams, HistoryWindow, compute_features
from fraud_kedro.store import DuplicateTransactionError, History, ScoredBatch, StateStore, StateStoreError

logger = logging.getLogger(__name__)

# ScoreResult, build_frames, explain_scores, in_share live in score_frames.py, Coalescer in
# coalescer.py; still importable from here
__all__ = ["Coalescer", "ScoreResult", "ScoringService", "build_frames", "explain_scores", "in_share"]


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
            batch = ScoredBatch(transactions, matrix, proba, decisions, explained)
            store.record_scores(batch, model.ref, utc_now())
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
                batch = ScoredBatch(rows, matrix, proba, decisions)
                store.record_scores(batch, shadow.ref, utc_now(), role="shadow")
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
