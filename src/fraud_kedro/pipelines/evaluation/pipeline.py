"""evaluation: test-window metrics, slices, plots, candidates, quality gate (tagged ``training``)."""

from kedro.pipeline import Pipeline

from fraud_kedro.model_card import make_model_card
from fraud_kedro.pipelines.stages import stage, step

from . import nodes
from .explanations import explain_globally


def create_pipeline(**kwargs) -> Pipeline:
    """Create the evaluation pipeline."""
    return stage(
        "evaluation",
        [
            step(nodes.score_table,
                 ["test_set", "fraud_model", "feature_spec", "decision_threshold"],
                 "reference_predictions",
                 name="score_test_set_node"),
            step(nodes.compute_metrics,
                 ["reference_predictions", "decision_threshold", "feature_spec", "params:evaluation"],
                 ["metrics", "mlflow_metrics", "slice_metrics"]),
            step(nodes.candidate_report,
                 ["candidate_models", "test_set", "feature_spec", "tuning_results", "params:model",
                  "params:evaluation"],
                 "candidate_comparison"),
            step(nodes.plot_evaluation,
                 ["reference_predictions", "decision_threshold", "feature_spec"],
                 ["precision_recall_plot", "roc_plot", "calibration_plot",
                  "score_distribution_plot", "confusion_matrix_plot"]),
            step(nodes.plot_feature_importance,
                 ["fraud_model", "test_set", "feature_spec", "params:evaluation"],
                 ["feature_importance", "feature_importance_plot"]),
            step(explain_globally,
                 ["fraud_model", "test_set", "feature_spec", "params:evaluation"],
                 ["contribution_importance", "contribution_summary_plot"]),
            step(make_model_card,
                 ["split_info", "tuning_results", "params:model", "metrics", "slice_metrics",
                  "decision_threshold", "quality_gate_verdict", "candidate_comparison",
                  "feature_spec", "train_set", "test_set"],
                 "model_card"),
            step(nodes.evaluate_champion,
                 ["champion_model", "test_set", "feature_spec"],
                 "champion_metrics"),
            step(nodes.quality_gate,
                 ["metrics", "champion_metrics", "params:quality_gate"],
                 "quality_gate_verdict"),
        ],
        tags=["training", "evaluation"],
    )
