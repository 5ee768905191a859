"""Nodes of the monitoring pipeline: thin, the logic is the Kedro-free toolkit.

Most nodes are functions of :mod:`fraud_kedro.monitoring` under their node names: the tables
(:mod:`~fraud_kedro.monitoring.tables`), the assessments (:mod:`~fraud_kedro.monitoring.assessment`)
and the decision (:mod:`~fraud_kedro.monitoring.decision`); the statistics come from the toolkit,
whose NannyML calls are confined to two modules. Column names come from ``monitoring.columns`` and
the feature list from ``feature_spec``; nodes never modify their inputs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from fraud_kedro.monitoring import alerts as alerts_lib
from fraud_kedro.monitoring import champion_challenger, plots
from fraud_kedro.monitoring import estimator as estimator_lib
from fraud_kedro.monitoring.assessment import (
    calibration_report,
    data_quality_table,
    drift_table,
    performance_table,
    realized_performance,
)
from fraud_kedro.monitoring.decision import monitoring_metrics, retrain_decision
from fraud_kedro.monitoring.params import MonitoringParams
from fraud_kedro.monitoring.tables import analysis_table, chunks_of, reference_table

# nodes that are toolkit functions (node name = toolkit function)
prepare_reference = reference_table
build_analysis_table = analysis_table
plan_chunks = chunks_of
calculate_realized_performance = realized_performance
assess_performance = performance_table
calculate_drift = drift_table
check_data_quality = data_quality_table
assess_calibration = calibration_report
decide_retraining = retrain_decision
build_monitoring_metrics = monitoring_metrics


def resolve_monitoring_params(params: MonitoringParams, label_delay_days: float) -> MonitoringParams:
    """The monitoring parameters (built and validated by Kedro), with the project's one label delay.

    Args:
        params: The ``monitoring`` parameters.
        label_delay_days: ``split.delay_days``, the label delay of features, split and monitoring.

    Returns:
        The parameters every monitoring node takes.

    Raises:
        ValueError: When ``monitoring.label_delay_days`` is set to another value (it moved to
            ``split.delay_days``).
    """
    if params.label_delay_days != MonitoringParams().label_delay_days:
        raise ValueError(
            "monitoring.label_delay_days is no longer a parameter: the label delay is "
            "split.delay_days (one parameter for features, split and monitoring)"
        )
    return replace(params, label_delay_days=float(label_delay_days))


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
    c, perf = params.columns, params.performance
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
    return champion_challenger.compare(reference, analysis, int(chunk_plan["chunk_size"]), params)


def collect_monitoring_alerts(
    performance: pd.DataFrame,
    drift: pd.DataFrame,
    data_quality: pd.DataFrame,
    calibration: dict,
    params: MonitoringParams,
) -> pd.DataFrame:
    """Every alert of the analysis period (kind, subject, chunk, value, threshold, trigger)."""
    return alerts_lib.collect_alerts(
        performance, drift, data_quality, calibration, params.alerts.retrain_on
    )


def plot_performance(performance: pd.DataFrame) -> Any:
    """Interactive figure of estimated and realised performance."""
    return plots.performance_figure(performance)


def plot_drift(drift: pd.DataFrame) -> Any:
    """Interactive figure of univariate and multivariate drift."""
    return plots.drift_figure(drift)


def plot_calibration(reliability: pd.DataFrame) -> Any:
    """Interactive reliability diagram."""
    return plots.calibration_figure(reliability)
