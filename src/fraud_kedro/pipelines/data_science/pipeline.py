"""data_science: split, tune, train, choose the threshold (nodes tagged ``training``)."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    choose_threshold,
    make_input_example,
    split_data,
    train_candidates,
    train_model,
    tune_models,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the data_science pipeline."""
    return Pipeline(
        [
            Node(
                split_data,
                inputs=["model_input_table", "params:split", "params:features"],
                outputs=["training_history", "train_set", "test_set", "production_set",
                         "split_info"],
                name="split_data_node",
            ),
            Node(
                tune_models,
                inputs=["training_history", "split_info", "feature_spec", "params:split",
                        "params:model"],
                outputs=["tuning_results", "optuna_trials", "optuna_history_plot",
                         "optuna_importance_plot"],
                name="tune_models_node",
            ),
            Node(
                train_candidates,
                inputs=["train_set", "feature_spec", "tuning_results", "params:model"],
                outputs="candidate_models",
                name="train_candidates_node",
            ),
            Node(
                train_model,
                inputs=["train_set", "feature_spec", "tuning_results", "params:model"],
                outputs="fraud_model",
                name="train_model_node",
            ),
            Node(
                choose_threshold,
                inputs=["fraud_model", "train_set", "feature_spec", "params:threshold"],
                outputs="decision_threshold",
                name="choose_threshold_node",
            ),
            Node(
                make_input_example,
                inputs=["test_set", "feature_spec"],
                outputs="scoring_input",
                name="make_input_example_node",
            ),
        ],
        tags=["training"],
        namespace="data_science",  # kedro-viz collapses the stage; dataset names stay global
        prefix_datasets_with_namespace=False,
    )
