"""Performance estimation without labels (NannyML's CBPE), behind a backend-free interface.

Callers pass time-sorted frames and column names and get a tidy table back; nothing outside this
module and :mod:`fraud_kedro.monitoring._nannyml` knows NannyML's API or its result layout.

CBPE assumes the scores are calibrated probabilities: it fits its own calibrator (isotonic) on the
reference, i.e. the model's test window, never the training data, and turns each analysis row's
calibrated probability into expected confusion-matrix counts. Two consequences:

* it cannot see concept drift: when frauds of a new kind get low scores, CBPE still believes the
  scores and overestimates performance (drift detection and realised performance catch it);
* average precision is estimated as a ratio of expectations, biased low on chunks with few
  frauds; by default the AP reported here is the Monte Carlo expectation of the realised AP
  under the same calibrated probabilities
  (:func:`~fraud_kedro.monitoring.chunk_metrics.expected_ranking_metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraud_kedro.monitoring import _nannyml
from fraud_kedro.monitoring.chunk_metrics import expected_ranking_metrics
from fraud_kedro.monitoring.chunking import chunk_bounds

logger = logging.getLogger(__name__)

ESTIMATE_COLUMNS = [
    "period",
    "chunk_index",
    "start_index",
    "end_index",
    "metric",
    "estimated",
    "backend_estimate",
    "sampling_error",
    "band_lower",
    "band_upper",
]

_Y_PRED = "__y_pred"
_Y_TRUE = "__y_true"
_SCORE = "__score"


@dataclass(frozen=True)
class PerformanceEstimate:
    """Per-chunk estimates of both periods (long format) and the estimator's calibration step."""

    table: pd.DataFrame
    recalibrated: bool

    def analysis(self) -> pd.DataFrame:
        """The rows of the analysis period."""
        return self.table[self.table["period"] == "analysis"].reset_index(drop=True)


def _frame(
    data: pd.DataFrame, score: str, prediction: np.ndarray, label: str | None
) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            _SCORE: data[score].to_numpy(dtype=np.float64),
            _Y_PRED: np.asarray(prediction).astype(np.int64),
        }
    )
    if label is not None:
        out[_Y_TRUE] = pd.to_numeric(data[label]).to_numpy(dtype=np.int64)
    return out


def _check_bounds(result: pd.DataFrame, n_rows: int, chunk_size: int, period: str) -> None:
    expected = chunk_bounds(n_rows, chunk_size)
    got = list(
        zip(
            _nannyml.chunk_field(result, "start_index").astype(int),
            _nannyml.chunk_field(result, "end_index").astype(int) + 1,
            strict=True,
        )
    )
    if got != expected:
        raise RuntimeError(f"NannyML chunked the {period} data differently than expected")


def estimate_performance(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    *,
    score: str,
    label: str,
    reference_prediction: np.ndarray,
    analysis_prediction: np.ndarray,
    metrics: Sequence[str],
    chunk_size: int,
    band_std_multiplier: float = 3.0,
    ap_estimator: str = "expected",
    ap_samples: int = 200,
    seed: int = 0,
) -> PerformanceEstimate:
    """Estimate per-chunk performance on ``analysis`` from the scores alone.

    Args:
        reference: Time-sorted labelled data the estimator is fitted on (the model's test window).
        analysis: Time-sorted data to estimate; its labels, if any, are not used.
        score: Column of the model's fraud probability.
        label: Label column of ``reference``.
        reference_prediction: 0/1 decisions of the model on ``reference`` (its threshold).
        analysis_prediction: 0/1 decisions on ``analysis``.
        metrics: Among ``roc_auc, average_precision, precision, recall, f1``.
        chunk_size: Rows per chunk (see :mod:`fraud_kedro.monitoring.chunking`).
        band_std_multiplier: Width of the statistical band, in reference-chunk standard deviations.
        ap_estimator: ``expected`` (Monte Carlo, unbiased) or ``nannyml`` (plug-in).
        ap_samples: Monte Carlo draws per chunk for ``expected``.
        seed: Seed of the draws.

    Returns:
        The estimate: one row per period, chunk and metric with ``estimated`` (the value to use),
        ``backend_estimate`` (NannyML's own), ``sampling_error`` and the band.
    """
    nml = _nannyml.nannyml()
    ref = _frame(reference, score, reference_prediction, label)
    ana = _frame(analysis, score, analysis_prediction, None)
    metrics = list(metrics)
    with _nannyml.quiet():
        estimator = nml.CBPE(
            y_pred_proba=_SCORE,
            y_pred=_Y_PRED,
            y_true=_Y_TRUE,
            problem_type="classification_binary",
            metrics=metrics,
            chunker=_nannyml.size_chunker(chunk_size),
            thresholds={m: _nannyml.std_threshold(band_std_multiplier) for m in metrics},
        )
        estimator.fit(ref)
        result = _nannyml.result_frame(estimator.estimate(ana))
    recalibrated = bool(estimator.needs_calibration)
    logger.info(
        "CBPE fitted on %d reference rows (%s calibration of the scores)",
        len(ref),
        "isotonic re-" if recalibrated else "no re-",
    )

    periods = _nannyml.chunk_field(result, "period").to_numpy()
    starts = _nannyml.chunk_field(result, "start_index").astype(int).to_numpy()
    ends = _nannyml.chunk_field(result, "end_index").astype(int).to_numpy() + 1
    indices = _nannyml.chunk_field(result, "chunk_index").astype(int).to_numpy()
    for period, frame in (("reference", ref), ("analysis", ana)):
        _check_bounds(result[periods == period], len(frame), chunk_size, period)

    def calibrated(values: np.ndarray) -> np.ndarray:
        if not recalibrated:
            return values
        return np.asarray(estimator.calibrator.calibrate(values), dtype=np.float64)

    rows = []
    for i, row in result.iterrows():
        period = periods[i]
        frame = ref if period == "reference" else ana
        start, end = int(starts[i]), int(ends[i])
        expected = None
        if "average_precision" in metrics and ap_estimator == "expected":
            raw = frame[_SCORE].to_numpy()[start:end]
            expected = expected_ranking_metrics(calibrated(raw), raw, ap_samples, seed + i)
        for m in metrics:
            backend = float(row[(m, "value")])
            value = backend
            if m == "average_precision" and expected is not None:
                value = expected["average_precision"]
            rows.append(
                {
                    "period": period,
                    "chunk_index": int(indices[i]),
                    "start_index": start,
                    "end_index": end,
                    "metric": m,
                    "estimated": value,
                    "backend_estimate": backend,
                    "sampling_error": float(row[(m, "sampling_error")]),
                    "band_lower": _float_or_nan(row[(m, "lower_threshold")]),
                    "band_upper": _float_or_nan(row[(m, "upper_threshold")]),
                }
            )
    return PerformanceEstimate(
        table=pd.DataFrame(rows, columns=ESTIMATE_COLUMNS), recalibrated=recalibrated
    )


def _float_or_nan(value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
    return out
