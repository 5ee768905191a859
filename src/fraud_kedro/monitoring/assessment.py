"""Realised performance, the performance table with its alerts, drift, data quality and
calibration, from the tables of :mod:`fraud_kedro.monitoring.tables`. Kedro-free: the monitoring
nodes call these.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from fraud_kedro.monitoring import drift as drift_lib
from fraud_kedro.monitoring.chunk_metrics import (
    calibration_summary,
    jsonable,
    realized_rows,
    reliability_table,
)
from fraud_kedro.monitoring.params import MonitoringParams
from fraud_kedro.monitoring.tables import model_features, with_chunk_dates

logger = logging.getLogger(__name__)


def realized_performance(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    chunks: pd.DataFrame,
    params: MonitoringParams,
) -> pd.DataFrame:
    """Realised metrics of every chunk whose labels have arrived (``min_label_coverage``).

    Returns:
        Long table: ``period, chunk_index, metric, realized, label_coverage``.
    """
    p = MonitoringParams.coerce(params)
    c, perf = p.columns, p.performance
    rows = []
    for period, frame in (("reference", reference), ("analysis", analysis)):
        rows += realized_rows(
            frame, chunks, period, c, perf.metrics, perf.min_label_coverage, c.score
        )
    realized = pd.DataFrame(rows)
    known = realized[(realized["period"] == "analysis") & realized["realized"].notna()]
    logger.info(
        "Realised performance for %d of %d analysis chunks (labels known)",
        known["chunk_index"].nunique(),
        int((chunks["period"] == "analysis").sum()),
    )
    return realized


def performance_table(
    estimated: pd.DataFrame,
    realized: pd.DataFrame,
    chunks: pd.DataFrame,
    params: MonitoringParams,
) -> pd.DataFrame:
    """Estimated and realised metrics side by side, with business and statistical alerts.

    Alerts (analysis chunks only): ``alert_estimated`` / ``alert_realized`` when the value is
    below the business minimum (``performance.min_acceptable``), ``alert_band_*`` when it is
    below NannyML's lower band.
    """
    p = MonitoringParams.coerce(params)
    table = estimated.merge(
        realized, on=["period", "chunk_index", "metric"], how="left", validate="one_to_one"
    )
    info = chunks[
        ["period", "chunk_index", "chunk_start", "chunk_end", "n_rows", "n_labelled", "n_positives"]
    ]
    table = table.merge(info, on=["period", "chunk_index"], how="left", validate="many_to_one")
    minimum = table["metric"].map(p.performance.min_acceptable).astype(np.float64)
    table["min_acceptable"] = minimum
    analysis = (table["period"] == "analysis").to_numpy()
    est, real = table["estimated"].to_numpy(), table["realized"].to_numpy(dtype=np.float64)
    lower = table["band_lower"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        table["alert_estimated"] = analysis & (est < minimum.to_numpy())
        table["alert_realized"] = analysis & (real < minimum.to_numpy())
        table["alert_band_estimated"] = analysis & (est < lower)
        table["alert_band_realized"] = analysis & (real < lower)
    columns = [
        "period", "chunk_index", "chunk_start", "chunk_end", "start_index", "end_index", "n_rows",
        "n_labelled", "n_positives", "metric", "estimated", "backend_estimate", "sampling_error",
        "band_lower", "band_upper", "realized", "label_coverage", "min_acceptable",
        "alert_estimated", "alert_realized", "alert_band_estimated", "alert_band_realized",
    ]  # fmt: skip
    return table[columns]


def key_features(features: list[str], p: MonitoringParams) -> list[str]:
    if p.drift.key_features is None:
        return [f for f in features if f not in set(p.drift.seasonal_features)]
    unknown = sorted(set(p.drift.key_features) - set(features))
    if unknown:
        logger.warning("monitoring.drift.key_features not among the model features: %s", unknown)
    return [f for f in p.drift.key_features if f in features]


def drift_table(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    feature_spec: dict,
    chunk_plan: dict,
    chunks: pd.DataFrame,
    params: MonitoringParams,
) -> pd.DataFrame:
    """Univariate drift of every model feature and of the score; multivariate drift.

    Returns:
        Long table: ``period, chunk_index, chunk_start, chunk_end, kind, column, method, value,
        threshold, alert, is_key, is_score``.
    """
    p = MonitoringParams.coerce(params)
    c, d = p.columns, p.drift
    features = model_features(feature_spec)
    size = int(chunk_plan["chunk_size"])
    parts = [
        drift_lib.univariate_drift(
            reference, analysis, [*features, c.score], size, d.method, d.threshold
        )
    ]
    stable = [f for f in features if f not in set(d.seasonal_features)]
    if d.multivariate and len(stable) >= 2:
        parts.append(
            drift_lib.multivariate_drift(
                reference,
                analysis,
                stable,
                size,
                d.multivariate_min_relative_increase,
                p.performance.band_std_multiplier,
            )
        )
    if d.domain_classifier:
        parts.append(
            drift_lib.domain_classifier_drift(
                reference, analysis, stable, size, d.domain_classifier_threshold
            )
        )
    table = pd.concat(parts, ignore_index=True)
    key = set(key_features(features, p))
    table["is_score"] = (table["kind"] == "univariate") & (table["column"] == c.score)
    table["is_key"] = (table["kind"] == "univariate") & table["column"].isin(key)
    table = with_chunk_dates(table, chunks)
    columns = [
        "period", "chunk_index", "chunk_start", "chunk_end", "kind", "column", "method", "value",
        "threshold", "alert", "is_key", "is_score",
    ]  # fmt: skip
    return table[columns]


def data_quality_table(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    feature_spec: dict,
    chunk_plan: dict,
    chunks: pd.DataFrame,
    params: MonitoringParams,
) -> pd.DataFrame:
    """Missing values and values outside the reference range, per feature (and score) and chunk."""
    p = MonitoringParams.coerce(params)
    columns = [*model_features(feature_spec), p.columns.score]
    table = drift_lib.data_quality(
        reference,
        analysis,
        columns,
        int(chunk_plan["chunk_size"]),
        p.data_quality.max_missing_rate,
        p.data_quality.max_out_of_range_rate,
    )
    table = with_chunk_dates(table, chunks)
    return table[
        ["period", "chunk_index", "chunk_start", "chunk_end", "column", "check", "value",
         "threshold", "alert"]
    ]  # fmt: skip


def calibration_report(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    estimator_info: dict,
    params: MonitoringParams,
) -> tuple[dict, pd.DataFrame]:
    """Calibration of the scores on the reference (what CBPE relies on) and on labelled analysis.

    Returns:
        The report (Brier score, ECE, calibration-in-the-large per period, whether CBPE
        re-calibrated) and the reliability table (equal-mass bins) of both periods.
    """
    p = MonitoringParams.coerce(params)
    c, n_bins = p.columns, p.calibration.n_bins
    labelled = analysis[analysis[c.label_available].to_numpy(dtype=bool)]
    report: dict[str, Any] = {
        "method": "equal-mass bins",
        "max_ece": p.calibration.max_ece,
        "estimator_recalibrated": bool(estimator_info.get("recalibrated", False)),
    }
    tables = []
    for period, frame in (("reference", reference), ("analysis_labelled", labelled)):
        y = frame[c.label].to_numpy(dtype=np.float64)
        prob = frame[c.score].to_numpy(dtype=np.float64)
        report[period] = calibration_summary(y, prob, n_bins)
        tables.append(reliability_table(y, prob, n_bins).assign(period=period))
    ref = report["reference"]
    logger.info(
        "Reference calibration: Brier %.5f (skill %.3f), ECE %.5f, mean score %.5f vs fraud rate "
        "%.5f; CBPE %s",
        ref["brier"], ref["brier_skill"], ref["ece"], ref["mean_predicted"], ref["fraud_rate"],
        "re-calibrated the scores (isotonic)" if report["estimator_recalibrated"]
        else "used the scores as they are",
    )  # fmt: skip
    return jsonable(report), pd.concat(tables, ignore_index=True)
