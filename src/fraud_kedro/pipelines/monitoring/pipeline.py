"""The ``monitoring`` pipeline: is the model still good on production traffic, should it retrain?

Inputs: ``reference_predictions`` (the model's labelled test window), ``production_predictions``
(batch scores of the production period) or ``monitoring_service_log`` (the scoring service's logs,
with ``monitoring.source: service_log``), ``feature_spec`` and ``decision_threshold``.
Outputs: versioned tables and plots under data/08_reporting (copied to MLflow), metric histories
in MLflow, and the versioned ``retrain_decision``.
"""

from typing import Any

from kedro.pipeline import Pipeline

from fraud_kedro.monitoring import report
from fraud_kedro.pipelines.monitoring import nodes
from fraud_kedro.pipelines.stages import stage, step

# the monitoring parameters with the one label delay (split.delay_days) filled in
_PARAMS = "monitoring_params"


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Build the monitoring pipeline.

    Args:
        **kwargs: Unused; accepted for Kedro's pipeline discovery.

    Returns:
        The pipeline, every node tagged ``monitoring``.
    """
    return stage(
        "monitoring",
        [
            step(nodes.resolve_monitoring_params,
                 ["params:monitoring", "params:split.delay_days"],
                 _PARAMS),
            step(nodes.prepare_reference,
                 ["reference_predictions", "feature_spec", "decision_threshold", _PARAMS],
                 "monitoring_reference",
                 name="prepare_monitoring_reference_node"),
            step(nodes.build_analysis_table,
                 ["production_predictions", "monitoring_service_log", "feature_spec",
                  "decision_threshold", _PARAMS],
                 "monitoring_analysis",
                 name="build_monitoring_analysis_table_node"),
            step(nodes.plan_chunks,
                 ["monitoring_reference", "monitoring_analysis", _PARAMS],
                 ["monitoring_chunk_plan", "monitoring_chunks"],
                 name="plan_monitoring_chunks_node"),
            step(nodes.estimate_monitoring_performance,
                 ["monitoring_reference", "monitoring_analysis", "monitoring_chunk_plan", _PARAMS],
                 ["monitoring_estimated_performance", "monitoring_estimator_info"],
                 name="estimate_performance_node"),
            step(nodes.calculate_realized_performance,
                 ["monitoring_reference", "monitoring_analysis", "monitoring_chunks", _PARAMS],
                 "monitoring_realized_performance",
                 name="calculate_realized_performance_node"),
            step(nodes.assess_performance,
                 ["monitoring_estimated_performance", "monitoring_realized_performance",
                  "monitoring_chunks", _PARAMS],
                 "monitoring_performance",
                 name="assess_performance_node"),
            step(nodes.calculate_drift,
                 ["monitoring_reference", "monitoring_analysis", "feature_spec",
                  "monitoring_chunk_plan", "monitoring_chunks", _PARAMS],
                 "monitoring_drift",
                 name="calculate_drift_node"),
            step(nodes.check_data_quality,
                 ["monitoring_reference", "monitoring_analysis", "feature_spec",
                  "monitoring_chunk_plan", "monitoring_chunks", _PARAMS],
                 "monitoring_data_quality",
                 name="check_data_quality_node"),
            step(nodes.assess_calibration,
                 ["monitoring_reference", "monitoring_analysis", "monitoring_estimator_info",
                  _PARAMS],
                 ["monitoring_calibration", "monitoring_reliability"],
                 name="assess_calibration_node"),
            step(nodes.compare_champion_challenger,
                 ["monitoring_reference", "monitoring_analysis", "monitoring_chunk_plan", _PARAMS],
                 ["monitoring_champion_challenger", "monitoring_champion_challenger_summary"]),
            step(nodes.collect_monitoring_alerts,
                 ["monitoring_performance", "monitoring_drift", "monitoring_data_quality",
                  "monitoring_calibration", _PARAMS],
                 "monitoring_alerts"),
            step(nodes.decide_retraining,
                 ["monitoring_alerts", "monitoring_chunk_plan", "monitoring_chunks",
                  "monitoring_calibration", "monitoring_champion_challenger_summary", _PARAMS],
                 "retrain_decision",
                 name="decide_retraining_node"),
            step(nodes.build_monitoring_metrics,
                 ["monitoring_performance", "monitoring_drift", "monitoring_calibration",
                  "monitoring_chunk_plan", "retrain_decision"],
                 "monitoring_metrics",
                 name="build_monitoring_metrics_node"),
            step(nodes.plot_performance,
                 "monitoring_performance",
                 "monitoring_performance_plot",
                 name="plot_monitoring_performance_node"),
            step(nodes.plot_drift,
                 "monitoring_drift",
                 "monitoring_drift_plot",
                 name="plot_monitoring_drift_node"),
            step(nodes.plot_calibration,
                 "monitoring_reliability",
                 "monitoring_calibration_plot",
                 name="plot_monitoring_calibration_node"),
            step(report.build_index,
                 ["retrain_decision", "monitoring_alerts", "monitoring_performance",
                  "monitoring_drift", "monitoring_reliability"],
                 "monitoring_report",
                 name="build_monitoring_report_node"),
        ],
    )
