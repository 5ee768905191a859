"""Model selection helpers: fold scores with early stopping, seed spread, serving cost.

The selection rule (``choose_candidate``): the candidate with the best mean validation average
precision over the prequential folds wins, unless a cheaper-to-serve candidate is within the seed
spread of that best AP; then the cheapest of those is chosen, since the AP difference is noise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from fraud_kedro.models import EARLY_STOPPING, build_estimator

logger = logging.getLogger(__name__)

Fold = tuple[np.ndarray, np.ndarray]


def fit_on_fold(
    kind: str,
    params: dict[str, Any],
    seed: int,
    X: np.ndarray,  # noqa: N803
    y: np.ndarray,
    fold: Fold,
    early_stopping_rounds: int | None,
) -> tuple[Any, float, int | None]:
    """Fit a candidate on a fold's fit rows and score its validation rows.

    Boosting candidates stop early on the validation rows (their number of trees is tuned there,
    as the prequential folds are the tuning data; the test window is never seen).

    Returns:
        ``(model, validation AP, trees kept or None)``.
    """
    fit_idx, val_idx = fold
    model = build_estimator(kind, params, seed)
    if kind in EARLY_STOPPING and early_stopping_rounds:
        model.fit(X[fit_idx], y[fit_idx], eval_set=(X[val_idx], y[val_idx]),
                  early_stopping_rounds=early_stopping_rounds)
        trees: int | None = int(model.best_iteration_)
    else:
        model.fit(X[fit_idx], y[fit_idx])
        trees = None
    score = float(average_precision_score(y[val_idx], model.predict_proba(X[val_idx])[:, 1]))
    return model, score, trees


def with_tuned_trees(kind: str, params: dict[str, Any], trees: Sequence[int | None]) -> dict:
    """``params`` with ``n_estimators`` set to the mean number of trees early stopping kept."""
    kept = [t for t in trees if t]
    if kind not in EARLY_STOPPING or not kept:
        return dict(params)
    return {**params, "n_estimators": max(1, round(float(np.mean(kept))))}


def single_row_ms(model: Any, row: np.ndarray, repeats: int = 200,
                  method: str = "predict_proba") -> float:
    """Median wall time (ms) of ``predict_proba`` on one row, as the service calls it; with
    ``method="contributions"``, of its reasons (:func:`fraud_kedro.explain.contributions`)."""
    from fraud_kedro.explain import contributions

    row = np.asarray(row, dtype=np.float64).reshape(1, -1)
    call = model.predict_proba if method == "predict_proba" else (lambda r: contributions(model, r))
    call(row)  # warm-up (lazy initialisation in some libraries)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call(row)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e3)


def choose_candidate(candidates: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The selected kind and the reasoning, from each candidate's AP mean, spread and latency.

    Args:
        candidates: kind -> ``{"validation_average_precision": mean, "validation_ap_std": std
            over seeds, "predict_ms": single-row time}``.

    Returns:
        ``(kind, decision)``: the decision records the best-AP kind, the tolerance (its seed
        spread), the kinds within it and a sentence for the log.
    """
    best = max(candidates, key=lambda k: candidates[k]["validation_average_precision"])
    best_ap = candidates[best]["validation_average_precision"]
    tolerance = float(candidates[best].get("validation_ap_std") or 0.0)
    tied = [k for k, c in candidates.items()
            if c["validation_average_precision"] >= best_ap - tolerance]
    chosen = min(tied, key=lambda k: (candidates[k].get("predict_ms", np.inf),
                                      -candidates[k]["validation_average_precision"]))
    if chosen == best:
        why = (f"{best} has the best validation AP ({best_ap:.4f}); "
               f"within its seed spread ({tolerance:.4f}): {sorted(tied)}; it is also the "
               "cheapest of them to serve" if len(tied) > 1 else
               f"{best} has the best validation AP ({best_ap:.4f}), beyond the seed spread "
               f"({tolerance:.4f}) of every other candidate")
    else:
        why = (f"{chosen} (AP {candidates[chosen]['validation_average_precision']:.4f}, "
               f"{candidates[chosen]['predict_ms']:.3f} ms a row) is within the seed spread "
               f"({tolerance:.4f}) of the best, {best} (AP {best_ap:.4f}, "
               f"{candidates[best]['predict_ms']:.3f} ms a row), and cheaper to serve")
    decision = {"best_average_precision_model": best, "tolerance": tolerance,
                "within_spread": sorted(tied), "selected": chosen, "reason": why}
    logger.info("model selection: %s", why)
    return chosen, decision
