"""Backend-free metrics: realised performance, expected ranking metrics, calibration, noise.

Nothing here imports NannyML; these functions keep working if the estimator backend changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud_kedro.contract import RANKING_METRICS, THRESHOLD_METRICS
from fraud_kedro.metrics import ranking_metrics, threshold_metrics

if TYPE_CHECKING:
    from fraud_kedro.monitoring.params import ColumnsParams

__all__ = ["RANKING_METRICS", "THRESHOLD_METRICS", "jsonable", "realized_metrics", "realized_rows"]


def realized_metrics(
    y_true: np.ndarray,
    score: np.ndarray,
    y_pred: np.ndarray,
    metrics: Iterable[str],
) -> dict[str, float]:
    """Realised metrics of one chunk, as :mod:`fraud_kedro.metrics` defines them (NaN = undefined).

    Args:
        y_true: 0/1 labels.
        score: Model scores (higher = more likely fraud).
        y_pred: 0/1 decisions at the model's threshold.
        metrics: Names among ``roc_auc, average_precision, precision, recall, f1``.
    """
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in RANKING_METRICS + THRESHOLD_METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}")
    values = {**ranking_metrics(y_true, score), **threshold_metrics(y_true, y_pred)}
    return {metric: values[metric] for metric in metrics}


def _tie_groups(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by decreasing score, and the start of each group of equal scores."""
    order = np.argsort(-score, kind="stable")
    s_sorted = score[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    return order, starts


def _auc_ap(tp_in: np.ndarray, fp_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC and average precision of each row of per-threshold counts.

    ``tp_in`` and ``fp_in`` are ``(draws, groups)`` positive and negative counts (or weights) of
    each group of tied scores, groups in decreasing score order; scikit-learn's definitions (one
    threshold per distinct score, ties counting one half in the AUC). Rows without both classes
    give NaN.
    """
    tp_cum = np.cumsum(tp_in, axis=1)
    fp_cum = np.cumsum(fp_in, axis=1)
    positives, negatives = tp_cum[:, -1], fp_cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp_in > 0, tp_cum / np.maximum(tp_cum + fp_cum, 1e-12), 0.0)
        ap = (tp_in * precision).sum(axis=1) / positives
        below = negatives[:, None] - fp_cum + 0.5 * fp_in
        auc = (tp_in * below).sum(axis=1) / (positives * negatives)
    ok = (positives > 0) & (negatives > 0)
    return np.where(ok, auc, np.nan), np.where(positives > 0, ap, np.nan)


def expected_ranking_metrics(
    probability: np.ndarray,
    score: np.ndarray,
    n_samples: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Expectation and spread of a chunk's realised ROC AUC and AP if labels ~ Bernoulli(p).

    CBPE's premise is that calibrated probabilities are the chance each row is a fraud. NannyML
    0.13.1 plugs the expected counts into the AP formula (a ratio of expectations), which is
    biased low against the realised AP of a chunk with few frauds (the expectation of a ratio).
    Drawing the labels ``n_samples`` times and averaging the metric removes that bias; the spread
    of the draws is the sampling noise a chunk's realised metric is expected to show.

    Ties in ``score`` are handled as scikit-learn does (one threshold per distinct score). Rows
    with zero probability are never positive, so only rows with ``p > 0`` are drawn.

    Args:
        probability: Calibrated fraud probabilities of the chunk's rows.
        score: The model's scores, which rank the rows.
        n_samples: Monte Carlo draws.
        seed: Seed of the draws (the result is deterministic).

    Returns:
        ``roc_auc``, ``roc_auc_std``, ``average_precision``, ``average_precision_std`` (NaN when
        no draw holds both classes).
    """
    nan = {"roc_auc": math.nan, "roc_auc_std": math.nan}
    nan |= {"average_precision": math.nan, "average_precision_std": math.nan}
    p = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
    s = np.asarray(score, dtype=np.float64)
    n = len(p)
    if n < 2 or not np.any(p > 0):
        return nan
    order, starts = _tie_groups(s)
    group_of_row = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    size = np.diff(np.r_[starts, n]).astype(np.float64)
    p_sorted = p[order]
    active = p_sorted > 0
    # only groups holding a row with p > 0 can hold a positive
    groups = np.unique(group_of_row[active])
    first = np.searchsorted(group_of_row[active], groups)
    rng = np.random.default_rng(seed)
    draws = (rng.random((n_samples, int(active.sum()))) < p_sorted[active]).astype(np.float64)
    tp_active = np.add.reduceat(draws, first, axis=1)
    tp_in = np.zeros((n_samples, len(starts)))
    tp_in[:, groups] = tp_active
    auc, ap = _auc_ap(tp_in, size[None, :] - tp_in)
    if np.all(np.isnan(auc)):
        return nan
    return {
        "roc_auc": float(np.nanmean(auc)),
        "roc_auc_std": float(np.nanstd(auc)),
        "average_precision": float(np.nanmean(ap)),
        "average_precision_std": float(np.nanstd(ap)),
    }


def bootstrap_std(
    y_true: np.ndarray,
    score: np.ndarray,
    metric: str,
    n_boot: int = 200,
    seed: int = 0,
) -> float:
    """Bootstrap standard deviation of a realised ranking metric: its sampling-noise floor.

    Rows are resampled with replacement (multinomial weights), ``n_boot`` times, vectorised.
    """
    y = np.asarray(y_true).astype(np.float64)
    s = np.asarray(score, dtype=np.float64)
    n = len(y)
    if n < 2:
        return math.nan
    order, starts = _tie_groups(s)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    y_sorted = y[order]
    tp_in = np.add.reduceat(weights * y_sorted, starts, axis=1)
    fp_in = np.add.reduceat(weights * (1.0 - y_sorted), starts, axis=1)
    auc, ap = _auc_ap(tp_in, fp_in)
    values = auc if metric == "roc_auc" else ap
    values = values[~np.isnan(values)]
    return float(np.std(values)) if len(values) > 1 else math.nan


def reliability_table(y_true: np.ndarray, probability: np.ndarray, n_bins: int) -> pd.DataFrame:
    """Equal-mass bins of predicted probability: mean prediction against observed fraud rate.

    Equal-width bins are useless at fraud rates below 1 %: nearly every row lands in the first.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    columns = ["bin", "n", "mean_predicted", "observed_rate", "p_min", "p_max"]
    if len(p) == 0:
        return pd.DataFrame(columns=columns)
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(n_bins, len(p)))
    rows = [
        {
            "bin": i,
            "n": len(b),
            "mean_predicted": float(p[b].mean()),
            "observed_rate": float(y[b].mean()),
            "p_min": float(p[b].min()),
            "p_max": float(p[b].max()),
        }
        for i, b in enumerate(bins)
        if len(b)
    ]
    return pd.DataFrame(rows, columns=columns)


def calibration_summary(y_true: np.ndarray, probability: np.ndarray, n_bins: int) -> dict:
    """Brier score (and its skill against the base rate), expected calibration error, and the
    calibration-in-the-large (mean prediction against fraud rate).

    The expected calibration error uses equal-mass bins (see :func:`reliability_table`).
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    n = len(y)
    if n == 0:
        return {"n": 0}
    rate = float(y.mean())
    brier = float(np.mean((p - y) ** 2))
    brier_base = rate * (1 - rate)
    table = reliability_table(y, p, n_bins)
    ece = float((table["n"] * (table["mean_predicted"] - table["observed_rate"]).abs()).sum() / n)
    mce = float((table["mean_predicted"] - table["observed_rate"]).abs().max())
    return {
        "n": int(n),
        "n_positives": int(y.sum()),
        "fraud_rate": rate,
        "mean_predicted": float(p.mean()),
        "brier": brier,
        "brier_skill": float(1 - brier / brier_base) if brier_base > 0 else math.nan,
        "ece": ece,
        "max_bin_error": mce,
        "n_bins": int(len(table)),
    }


def realized_rows(
    frame: pd.DataFrame,
    chunks: pd.DataFrame,
    period: str,
    c: ColumnsParams,
    metrics: tuple[str, ...],
    min_coverage: float,
    score: str,
) -> list[dict]:
    """Realised metrics per chunk of one period, for the chunks labelled at least ``min_coverage``.

    Threshold metrics use the champion's decisions (``c.prediction``) for its own score only.
    """
    rows = []
    available = frame[c.label_available].to_numpy(dtype=bool)
    labels = frame[c.label].to_numpy(dtype=np.float64)
    scores = frame[score].to_numpy(dtype=np.float64)
    # decisions belong to the champion: threshold metrics are computed for its score only
    decisions = frame[c.prediction].to_numpy() if score == c.score else None
    for chunk in chunks[chunks["period"] == period].itertuples(index=False):
        sl = slice(int(chunk.start_index), int(chunk.end_index))
        mask = available[sl]
        coverage = float(mask.mean()) if mask.size else 0.0
        values = dict.fromkeys(metrics, math.nan)
        if coverage >= min_coverage:
            pred = decisions[sl][mask] if decisions is not None else np.zeros(int(mask.sum()))
            values = realized_metrics(labels[sl][mask], scores[sl][mask], pred, metrics)
        for metric, value in values.items():
            rows.append(
                {
                    "period": period,
                    "chunk_index": int(chunk.chunk_index),
                    "metric": metric,
                    "realized": value,
                    "label_coverage": coverage,
                }
            )
    return rows


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars, timestamps and non-finite floats made JSON-safe (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return value
