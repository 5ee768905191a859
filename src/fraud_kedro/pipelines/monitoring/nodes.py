"""Nodes of the monitoring pipeline.

The nodes hold the monitoring logic in business terms (which labels are known, which alerts lead
to retraining); the statistics come from :mod:`fraud_kedro.monitoring`, whose NannyML calls are
confined to two modules. Column names come from ``monitoring.columns`` and the feature list from
``feature_spec``; nodes never modify their inputs.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from fraud_kedro.io.service_log import ServiceLogData
from fraud_kedro.monitoring import alerts as alerts_lib
from fraud_kedro.monitoring import champion_challenger, plots
from fraud_kedro.monitoring import drift as drift_lib
from fraud_kedro.monitoring import estimator as estimator_lib
from fraud_kedro.monitoring.chunk_metrics import (
    calibration_summary,
    jsonable,
    realized_rows,
    reliability_table,
)
from fraud_kedro.monitoring.chunking import chunk_table, plan_chunk_size
from fraud_kedro.monitoring.params import ColumnsParams, MonitoringParams
from fraud_kedro.monitoring.sources import join_service_log, label_batch, resolve_as_of

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def resolve_monitoring_params(params: dict | None, label_delay_days: float) -> MonitoringParams:
    """The typed monitoring parameters, with the project's one label delay.

    Args:
        params: The ``monitoring`` parameters.
        label_delay_days: ``split.delay_days``, the label delay of features, split and monitoring.

    Returns:
        The parameters every monitoring node takes.

    Raises:
        ValueError: On an unknown or invalid key, naming it (``monitoring.label_delay_days`` moved
            to ``split.delay_days``).
    """
    raw = dict(params or {})
    if "label_delay_days" in raw:
        raise ValueError(
            "monitoring.label_delay_days is no longer a parameter: the label delay is "
            "split.delay_days (one parameter for features, split and monitoring)"
        )
    return MonitoringParams.coerce({**raw, "label_delay_days": float(label_delay_days)})


def _features(feature_spec: dict) -> list[str]:
    features = list(feature_spec.get("features") or [])
    if not features:
        raise ValueError("feature_spec has no 'features' list")
    return features


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def _sort(frame: pd.DataFrame, cols: ColumnsParams) -> pd.DataFrame:
    keys = [cols.timestamp] + (
        [cols.transaction_id] if cols.transaction_id in frame.columns else []
    )
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _decisions(frame: pd.DataFrame, cols: ColumnsParams, threshold: float) -> np.ndarray:
    """The model's 0/1 decisions: the logged ones, else the score against the threshold."""
    if cols.prediction in frame.columns:
        logged = frame[cols.prediction].astype(bool).to_numpy()
        recomputed = frame[cols.score].to_numpy(dtype=np.float64) >= threshold
        mismatch = float(np.mean(logged != recomputed)) if len(frame) else 0.0
        if mismatch > 0:
            logger.warning(
                "%.2f%% of logged decisions differ from score >= threshold %.4g",
                100 * mismatch,
                threshold,
            )
        return logged.astype(np.int64)
    return (frame[cols.score].to_numpy(dtype=np.float64) >= threshold).astype(np.int64)


def _with_decisions(
    frame: pd.DataFrame, cols: ColumnsParams, decision_threshold: dict
) -> pd.DataFrame:
    threshold = float(decision_threshold["threshold"])
    return frame.assign(**{cols.prediction: _decisions(frame, cols, threshold)})


def _chunk_dates(table: pd.DataFrame, chunks: pd.DataFrame) -> pd.DataFrame:
    info = chunks[["period", "chunk_index", "chunk_start", "chunk_end"]]
    return table.merge(info, on=["period", "chunk_index"], how="left", validate="many_to_one")


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------


def prepare_reference(
    reference_predictions: pd.DataFrame,
    feature_spec: dict,
    decision_threshold: dict,
    params: MonitoringParams,
) -> pd.DataFrame:
    """The reference: the model's labelled test window, time-sorted, decisions as 0/1.

    Args:
        reference_predictions: The model's scores on its test window, with labels.
        feature_spec: ``{"features": [...]}``.
        decision_threshold: ``{"threshold": ...}`` (used when decisions are not logged).
        params: Monitoring parameters.

    Returns:
        A sorted copy; rows without a label are dropped (with a warning).
    """
    p = MonitoringParams.coerce(params)
    c = p.columns
    _require(
        reference_predictions,
        [c.timestamp, c.label, c.score, *_features(feature_spec)],
        "reference_predictions",
    )
    labelled = reference_predictions[reference_predictions[c.label].notna()]
    if len(labelled) < len(reference_predictions):
        logger.warning(
            "Dropped %d reference rows without a label", len(reference_predictions) - len(labelled)
        )
    reference = _with_decisions(_sort(labelled, c), c, decision_threshold)
    reference[c.label] = pd.to_numeric(reference[c.label]).astype(np.int64)
    reference[c.label_available] = True
    logger.info(
        "Reference: %d rows from %s to %s, %d frauds",
        len(reference),
        reference[c.timestamp].min(),
        reference[c.timestamp].max(),
        int(reference[c.label].sum()),
    )
    return reference


def build_analysis_table(
    production_predictions: pd.DataFrame | None,
    service_log: ServiceLogData | None,
    feature_spec: dict,
    decision_threshold: dict,
    params: MonitoringParams,
) -> pd.DataFrame:
    """The analysis table from the batch scores or the service's logs, with late labels masked.

    Args:
        production_predictions: Batch scores of the production period (``source: batch``).
        service_log: The scoring service's logs, as loaded (``source: service_log``).
        feature_spec: ``{"features": [...]}``.
        decision_threshold: ``{"threshold": ...}``.
        params: Monitoring parameters (``source``, ``label_delay_days``, ``as_of``).

    Returns:
        Time-sorted table: the prediction columns, the label (float, NaN where not yet known) and
        ``label_available``.
    """
    p = MonitoringParams.coerce(params)
    c = p.columns
    if p.source == "batch":
        if production_predictions is None:
            raise ValueError("monitoring.source is 'batch' but production_predictions is missing")
        data = _sort(production_predictions, c)
        table = label_batch(
            data,
            timestamp=c.timestamp,
            label=c.label,
            label_available=c.label_available,
            label_delay_days=p.label_delay_days,
            as_of=resolve_as_of(data[c.timestamp], p.as_of),
        )
    else:
        if service_log is None:
            raise ValueError("monitoring.source is 'service_log' but no service log is configured")
        if not service_log.available:
            raise ValueError(
                f"monitoring.source is 'service_log' but there is no service log at "
                f"{service_log.source} (FRAUD_STATE_URL / FRAUD_STATE_DB)"
            )
        shadow = service_log.shadow_predictions
        table = join_service_log(
            service_log.predictions,
            service_log.labels,
            transaction_id=c.transaction_id,
            timestamp=c.timestamp,
            label=c.label,
            label_available=c.label_available,
            scored_at=c.scored_at,
            received_at=c.label_received_at,
            model_version=c.model_version,
            label_delay_days=p.label_delay_days,
            as_of=p.as_of,
            version=p.model_version,
            assume_legit_after_delay=p.assume_legit_after_delay,
            shadow=shadow,
            score=c.score,
            challenger_score=c.challenger_score,
        )
        table = _sort(table, c)
    _require(table, [c.timestamp, c.score, *_features(feature_spec)], "the analysis table")
    if table.empty:
        raise ValueError("the analysis table is empty: nothing to monitor")
    return _with_decisions(table, c, decision_threshold)


def plan_chunks(
    reference: pd.DataFrame, analysis: pd.DataFrame, params: MonitoringParams
) -> tuple[dict, pd.DataFrame]:
    """Chunk size from the reference's fraud rate, and the chunks of both periods.

    Returns:
        The plan (``chunk_size``, ``reference_fraud_rate``, ``expected_positives_per_chunk``, ...)
        and one row per chunk: ``period, chunk_index, start_index, end_index, chunk_start,
        chunk_end, n_rows, n_labelled, n_positives``.
    """
    p = MonitoringParams.coerce(params)
    c, ch = p.columns, p.chunking
    plan = plan_chunk_size(
        reference_rows=len(reference),
        reference_positives=int(reference[c.label].sum()),
        analysis_rows=len(analysis),
        min_positives_per_chunk=ch.min_positives_per_chunk,
        min_chunk_size=ch.min_chunk_size,
        max_chunk_size=ch.max_chunk_size,
        min_reference_chunks=ch.min_reference_chunks,
    )
    tables = []
    for period, frame in (("reference", reference), ("analysis", analysis)):
        table = chunk_table(frame, plan.chunk_size, c.timestamp, c.label, c.label_available)
        tables.append(table.assign(period=period))
    chunks = pd.concat(tables, ignore_index=True)
    chunks = chunks[["period", *[col for col in chunks.columns if col != "period"]]]
    logger.info(
        "Chunks of %d rows (reference fraud rate %.4f%%, ~%.0f frauds per chunk): "
        "%d reference, %d analysis",
        plan.chunk_size,
        100 * plan.reference_fraud_rate,
        plan.expected_positives_per_chunk,
        plan.n_reference_chunks,
        plan.n_analysis_chunks,
    )
    return plan.to_dict(), chunks


# ------------------------------------------------------------------------------------------------
# performance
# ------------------------------------------------------------------------------------------------


def estimate_monitoring_performance(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    chunk_plan: dict,
    params: MonitoringParams,
) -> tuple[pd.DataFrame, dict]:
    """Per-chunk estimates of the metrics without labels (CBPE), with NannyML's bands.

    Returns:
        The estimates (long: period, chunk, metric) and ``{"recalibrated": bool}`` (whether the
        estimator re-calibrated the scores on the reference).
    """
    p = MonitoringParams.coerce(params)
    c, perf = p.columns, p.performance
    estimate = estimator_lib.estimate_performance(
        reference,
        analysis,
        score=c.score,
        label=c.label,
        reference_prediction=reference[c.prediction].to_numpy(),
        analysis_prediction=analysis[c.prediction].to_numpy(),
        metrics=perf.metrics,
        chunk_size=int(chunk_plan["chunk_size"]),
        band_std_multiplier=perf.band_std_multiplier,
        ap_estimator=perf.ap_estimator,
        ap_samples=perf.ap_samples,
        seed=perf.seed,
    )
    return estimate.table, {"recalibrated": estimate.recalibrated}


def calculate_realized_performance(
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


def assess_performance(
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


# ------------------------------------------------------------------------------------------------
# drift, data quality, calibration
# ------------------------------------------------------------------------------------------------


def _key_features(features: list[str], p: MonitoringParams) -> list[str]:
    if p.drift.key_features is None:
        return [f for f in features if f not in set(p.drift.seasonal_features)]
    unknown = sorted(set(p.drift.key_features) - set(features))
    if unknown:
        logger.warning("monitoring.drift.key_features not among the model features: %s", unknown)
    return [f for f in p.drift.key_features if f in features]


def calculate_drift(
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
    features = _features(feature_spec)
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
    key = set(_key_features(features, p))
    table["is_score"] = (table["kind"] == "univariate") & (table["column"] == c.score)
    table["is_key"] = (table["kind"] == "univariate") & table["column"].isin(key)
    table = _chunk_dates(table, chunks)
    columns = [
        "period", "chunk_index", "chunk_start", "chunk_end", "kind", "column", "method", "value",
        "threshold", "alert", "is_key", "is_score",
    ]  # fmt: skip
    return table[columns]


def check_data_quality(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    feature_spec: dict,
    chunk_plan: dict,
    chunks: pd.DataFrame,
    params: MonitoringParams,
) -> pd.DataFrame:
    """Missing values and values outside the reference range, per feature (and score) and chunk."""
    p = MonitoringParams.coerce(params)
    columns = [*_features(feature_spec), p.columns.score]
    table = drift_lib.data_quality(
        reference,
        analysis,
        columns,
        int(chunk_plan["chunk_size"]),
        p.data_quality.max_missing_rate,
        p.data_quality.max_out_of_range_rate,
    )
    table = _chunk_dates(table, chunks)
    return table[
        ["period", "chunk_index", "chunk_start", "chunk_end", "column", "check", "value",
         "threshold", "alert"]
    ]  # fmt: skip


def assess_calibration(
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


# ------------------------------------------------------------------------------------------------
# champion / challenger
# ------------------------------------------------------------------------------------------------


def compare_champion_challenger(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    chunk_plan: dict,
    params: MonitoringParams,
) -> tuple[pd.DataFrame, dict]:
    """Champion against the shadow challenger on the same traffic, estimated and realised.

    The comparison is :func:`fraud_kedro.monitoring.champion_challenger.compare`.

    Returns:
        Per chunk and metric (ROC AUC, AP): champion and challenger, estimated and realised; and a
        summary (overall realised metrics on labelled rows, mean estimates, which is better).
    """
    p = MonitoringParams.coerce(params)
    return champion_challenger.compare(reference, analysis, int(chunk_plan["chunk_size"]), p)


# ------------------------------------------------------------------------------------------------
# alerts, decision, reporting
# ------------------------------------------------------------------------------------------------


def collect_monitoring_alerts(
    performance: pd.DataFrame,
    drift: pd.DataFrame,
    data_quality: pd.DataFrame,
    calibration: dict,
    params: MonitoringParams,
) -> pd.DataFrame:
    """Every alert of the analysis period (kind, subject, chunk, value, threshold, trigger)."""
    p = MonitoringParams.coerce(params)
    return alerts_lib.collect_alerts(
        performance, drift, data_quality, calibration, p.alerts.retrain_on
    )


def decide_retraining(
    alerts: pd.DataFrame,
    chunk_plan: dict,
    chunks: pd.DataFrame,
    calibration: dict,
    champion_challenger: dict,
    params: MonitoringParams,
) -> dict:
    """The retraining decision: yes when an alert of a ``retrain_on`` kind holds.

    Returns:
        ``{"retrain": bool, "reasons": [...], "generated_at": ..., "as_of": ..., "alerts":
        [...], ...}``; every alert is also logged.
    """
    p = MonitoringParams.coerce(params)
    alerts = alerts.assign(retrain_trigger=alerts["kind"].isin(p.alerts.retrain_on))
    summaries = alerts_lib.summarize_alerts(alerts, p.alerts.min_consecutive_chunks)
    triggers = [s for s in summaries if s["retrain_trigger"] and s["counts"]]
    for s in summaries:
        level = logging.WARNING if s["retrain_trigger"] else logging.INFO
        logger.log(level, "Monitoring alert: %s", alerts_lib.reason(s))
    analysis = chunks[chunks["period"] == "analysis"]
    as_of = pd.Timestamp(p.as_of) if p.as_of else pd.Timestamp(analysis["chunk_end"].max())
    first = min(
        triggers, key=lambda s: -1 if s["first_chunk"] is None else s["first_chunk"], default=None
    )
    decision = {
        "retrain": bool(triggers),
        "reasons": [alerts_lib.reason(s) for s in triggers],
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "as_of": as_of,
        "source": p.source,
        "analysis_start": pd.Timestamp(analysis["chunk_start"].min()),
        "analysis_end": pd.Timestamp(analysis["chunk_end"].max()),
        "label_delay_days": p.label_delay_days,
        "chunk_size": chunk_plan["chunk_size"],
        "n_chunks": len(analysis),
        "n_chunks_with_labels": int(
            (analysis["n_labelled"] >= analysis["n_rows"] * p.performance.min_label_coverage).sum()
        ),
        "first_alert_chunk": first["first_chunk"] if first else None,
        "first_alert_start": first["first_chunk_start"] if first else None,
        "retrain_on": list(p.alerts.retrain_on),
        "alerts": summaries,
        "calibration": {
            "reference_brier": calibration.get("reference", {}).get("brier"),
            "reference_ece": calibration.get("reference", {}).get("ece"),
            "estimator_recalibrated": calibration.get("estimator_recalibrated"),
        },
        "champion_challenger": champion_challenger,
    }
    if decision["retrain"]:
        logger.warning("Retraining recommended: %s", "; ".join(decision["reasons"]))
    else:
        logger.info("No retraining needed (%d analysis chunks checked)", len(analysis))
    return jsonable(decision)


def build_monitoring_metrics(
    performance: pd.DataFrame,
    drift: pd.DataFrame,
    calibration: dict,
    chunk_plan: dict,
    decision: dict,
) -> dict[str, list[dict[str, float]]]:
    """Metric histories for MLflow (step = analysis chunk index), and run-level values (step 0)."""
    out: dict[str, list[dict[str, float]]] = {}

    def add(name: str, value: Any, step: int = 0) -> None:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return
        out.setdefault(name, []).append({"value": float(value), "step": int(step)})

    perf = performance[performance["period"] == "analysis"]
    for r in perf.itertuples(index=False):
        add(f"estimated_{r.metric}", r.estimated, r.chunk_index)
        add(f"realized_{r.metric}", r.realized, r.chunk_index)
    dr = drift[drift["period"] == "analysis"]
    for r in dr[dr["is_score"]].itertuples(index=False):
        add("score_drift", r.value, r.chunk_index)
    for r in dr[dr["kind"] == "multivariate"].itertuples(index=False):
        add(f"multivariate_{r.method}", r.value, r.chunk_index)
    key_alerts = dr[dr["is_key"]].groupby("chunk_index")["alert"].sum()
    for chunk_index, n in key_alerts.items():
        add("key_features_drifting", n, int(chunk_index))
    reference = calibration.get("reference", {})
    add("reference_brier", reference.get("brier"))
    add("reference_ece", reference.get("ece"))
    add("chunk_size", chunk_plan.get("chunk_size"))
    add("reference_fraud_rate", chunk_plan.get("reference_fraud_rate"))
    add("retrain", 1.0 if decision.get("retrain") else 0.0)
    add("n_alert_groups", len(decision.get("alerts", [])))
    return out


def plot_performance(performance: pd.DataFrame) -> Any:
    """Interactive figure of estimated and realised performance."""
    return plots.performance_figure(performance)


def plot_drift(drift: pd.DataFrame) -> Any:
    """Interactive figure of univariate and multivariate drift."""
    return plots.drift_figure(drift)


def plot_calibration(reliability: pd.DataFrame) -> Any:
    """Interactive reliability diagram."""
    return plots.calibration_figure(reliability)
