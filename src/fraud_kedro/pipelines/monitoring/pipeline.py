"""The ``monitoring`` pipeline: is the model still good on production traffic, should it retrain?

Inputs: ``reference_predictions`` (the model's labelled test window), ``production_predictions``
(batch scores of the production period) or ``monitoring_service_log`` (the scoring service's logs,
with ``monitoring.source: service_log``), ``feature_spec`` and ``decision_threshold``.
Outputs: versioned tables and plots under data/08_reporting (copied to MLflow), metric histories
in MLflow, and the versioned ``retrain_decision``.
"""

from typing import Any

from kedro.pipeline import Node, Pipeline

from fraud_kedro.monitoring import report
from fraud_kedro.pipelines.monitoring import nodes

# the monitoring parameters with the one label delay (split.delay_days) filled in
_PARAMS = "monitoring_params"


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Build the monitoring pipeline.

    Args:
        **kwargs: Unused; accepted for Kedro's pipeline discovery.

    Returns:
        The pipeline, every node tagged ``monitoring``.
    """
    return Pipeline(
        [
            Node(
                nodes.resolve_monitoring_params,
                inputs=["params:monitoring", "params:split.delay_days"],
                outputs=_PARAMS,
                name="resolve_monitoring_params_node",
            ),
            Node(
                nodes.prepare_reference,
                inputs=["reference_predictions", "feature_spec", "decision_threshold", _PARAMS],
                outputs="monitoring_reference",
                name="prepare_monitoring_reference_node",
            ),
            Node(
                nodes.build_analysis_table,
                inputs=[
                    "production_predictions",
                    "monitoring_service_log",
                    "feature_spec",
                    "decision_threshold",
                    _PARAMS,
                ],
                outputs="monitoring_analysis",
                name="build_monitoring_analysis_table_node",
            ),
            Node(
                nodes.plan_chunks,
                inputs=["monitoring_reference", "monitoring_analysis", _PARAMS],
                outputs=["monitoring_chunk_plan", "monitoring_chunks"],
                name="plan_monitoring_chunks_node",
            ),
            Node(
                nodes.estimate_monitoring_performance,
                inputs=[
                    "monitoring_reference",
                    "monitoring_analysis",
                    "monitoring_chunk_plan",
                    _PARAMS,
                ],
                outputs=["monitoring_estimated_performance", "monitoring_estimator_info"],
                name="estimate_performance_node",
            ),
            Node(
                nodes.calculate_realized_performance,
                inputs=[
                    "monitoring_reference",
                    "monitoring_analysis",
                    "monitoring_chunks",
                    _PARAMS,
                ],
                outputs="monitoring_realized_performance",
                name="calculate_realized_performance_node",
            ),
            Node(
                nodes.assess_performance,
                inputs=[
                    "monitoring_estimated_performance",
                    "monitoring_realized_performance",
                    "monitoring_chunks",
                    _PARAMS,
                ],
                outputs="monitoring_performance",
                name="assess_performance_node",
            ),
            Node(
                nodes.calculate_drift,
                inputs=[
                    "monitoring_reference",
                    "monitoring_analysis",
                    "feature_spec",
                    "monitoring_chunk_plan",
                    "monitoring_chunks",
                    _PARAMS,
                ],
                outputs="monitoring_drift",
                name="calculate_drift_node",
            ),
            Node(
                nodes.check_data_quality,
                inputs=[
                    "monitoring_reference",
                    "monitoring_analysis",
                    "feature_spec",
                    "monitoring_chunk_plan",
                    "monitoring_chunks",
                    _PARAMS,
                ],
                outputs="monitoring_data_quality",
                name="check_data_quality_node",
            ),
            Node(
                nodes.assess_calibration,
                inputs=[
                    "monitoring_reference",
                    "monitoring_analysis",
                    "monitoring_estimator_info",
                    _PARAMS,
                ],
                outputs=["monitoring_calibration", "monitoring_reliability"],
                name="assess_calibration_node",
            ),
            Node(
                nodes.compare_champion_challenger,
                inputs=[
                    "monitoring_reference",
                    "monitoring_analysis",
                    "monitoring_chunk_plan",
                    _PARAMS,
                ],
                outputs=[
                    "monitoring_champion_challenger",
                    "monitoring_champion_challenger_summary",
                ],
                name="compare_champion_challenger_node",
            ),
            Node(
                nodes.collect_monitoring_alerts,
                inputs=[
                    "monitoring_performance",
                    "monitoring_drift",
                    "monitoring_data_quality",
                    "monitoring_calibration",
                    _PARAMS,
                ],
                outputs="monitoring_alerts",
                name="collect_monitoring_alerts_node",
            ),
            Node(
                nodes.decide_retraining,
                inputs=[
                    "monitoring_alerts",
                    "monitoring_chunk_plan",
                    "monitoring_chunks",
                    "monitoring_calibration",
                    "monitoring_champion_challenger_summary",
                    _PARAMS,
                ],
                outputs="retrain_decision",
                name="decide_retraining_node",
            ),
            Node(
                nodes.build_monitoring_metrics,
                inputs=[
                    "monitoring_performance",
                    "monitoring_drift",
                    "monitoring_calibration",
                    "monitoring_chunk_plan",
                    "retrain_decision",
                ],
                outputs="monitoring_metrics",
                name="build_monitoring_metrics_node",
            ),
            Node(
                nodes.plot_performance,
                inputs="monitoring_performance",
                outputs="monitoring_performance_plot",
                name="plot_monitoring_performance_node",
            ),
            Node(
                nodes.plot_drift,
                inputs="monitoring_drift",
                outputs="monitoring_drift_plot",
                name="plot_monitoring_drift_node",
            ),
            Node(
                nodes.plot_calibration,
                inputs="monitoring_reliability",
                outputs="monitoring_calibration_plot",
                name="plot_monitoring_calibration_node",
            ),
            Node(
                report.build_index,
                inputs=[
                    "retrain_decision",
                    "monitoring_alerts",
                    "monitoring_performance",
                    "monitoring_drift",
                    "monitoring_reliability",
                ],
                outputs="monitoring_report",
                name="build_monitoring_report_node",
            ),
        ],
        tags=["monitoring"],
        namespace="monitoring",  # kedro-viz collapses the stage; dataset names stay global
        prefix_datasets_with_namespace=False,
    )
