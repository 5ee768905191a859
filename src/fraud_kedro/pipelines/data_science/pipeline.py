"""data_science: split, tune, train, choose the threshold (nodes tagged ``training``)."""

from kedro.pipeline import Pipeline

from fraud_kedro.pipelines.stages import stage, step

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """Create the data_science pipeline."""
    return stage(
        "data_science",
        [
            step(nodes.split_data,
                 ["model_input_table", "params:split", "params:features"],
                 ["training_history", "train_set", "test_set", "production_set", "split_info"]),
            step(nodes.tune_models,
                 ["training_history", "split_info", "feature_spec", "params:split", "params:model"],
                 ["tuning_results", "optuna_trials", "optuna_history_plot", "optuna_importance_plot"]),
            step(nodes.train_candidates,
                 ["train_set", "feature_spec", "tuning_results", "params:model"],
                 "candidate_models"),
            step(nodes.train_model,
                 ["train_set", "feature_spec", "tuning_results", "params:model"],
                 "fraud_model"),
            step(nodes.choose_threshold,
                 ["fraud_model", "train_set", "feature_spec", "params:threshold"],
                 "decision_threshold"),
            step(nodes.make_input_example, ["test_set", "feature_spec"], "scoring_input"),
        ],
        tags=["training"],
    )
