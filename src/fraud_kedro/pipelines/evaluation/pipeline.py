"""evaluation: test-window metrics, slices, plots, candidates, quality gate (tagged ``training``)."""

from kedro.pipeline import Node, Pipeline

from fraud_kedro.model_card import make_model_card

from .explanations import explain_globally
from .nodes import (
    candidate_report,
    compute_metrics,
    evaluate_champion,
    plot_evaluation,
    plot_feature_importance,
    quality_gate,
    score_table,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the evaluation pipeline."""
    return Pipeline(
        [
            Node(
                score_table,
                inputs=["test_set", "fraud_model", "feature_spec", "decision_threshold"],
                outputs="reference_predictions",
                name="score_test_set_node",
            ),
            Node(
                compute_metrics,
                inputs=["reference_predictions", "decision_threshold", "feature_spec",
                        "params:evaluation"],
                outputs=["metrics", "mlflow_metrics", "slice_metrics"],
                name="compute_metrics_node",
            ),
            Node(
                candidate_report,
                inputs=["candidate_models", "test_set", "feature_spec", "tuning_results",
                        "params:model", "params:evaluation"],
                outputs="candidate_comparison",
                name="candidate_report_node",
            ),
            Node(
                plot_evaluation,
                inputs=["reference_predictions", "decision_threshold", "feature_spec"],
                outputs=["precision_recall_plot", "roc_plot", "calibration_plot",
                         "score_distribution_plot", "confusion_matrix_plot"],
                name="plot_evaluation_node",
            ),
            Node(
                plot_feature_importance,
                inputs=["fraud_model", "test_set", "feature_spec", "params:evaluation"],
                outputs=["feature_importance", "feature_importance_plot"],
                name="plot_feature_importance_node",
            ),
            Node(
                explain_globally,
                inputs=["fraud_model", "test_set", "feature_spec", "params:evaluation"],
                outputs=["contribution_importance", "contribution_summary_plot"],
                name="explain_globally_node",
            ),
            Node(
                make_model_card,
                inputs=["split_info", "tuning_results", "params:model", "metrics",
                        "slice_metrics", "decision_threshold", "quality_gate_verdict",
                        "candidate_comparison", "feature_spec", "train_set", "test_set"],
                outputs="model_card",
                name="make_model_card_node",
            ),
            Node(
                evaluate_champion,
                inputs=["champion_model", "test_set", "feature_spec"],
                outputs="champion_metrics",
                name="evaluate_champion_node",
            ),
            Node(
                quality_gate,
                inputs=["metrics", "champion_metrics", "params:quality_gate"],
                outputs="quality_gate_verdict",
                name="quality_gate_node",
            ),
        ],
        tags=["training", "evaluation"],
        namespace="evaluation",  # kedro-viz collapses the stage; dataset names stay global
        prefix_datasets_with_namespace=False,
    )
