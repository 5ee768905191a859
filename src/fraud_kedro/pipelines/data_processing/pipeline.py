"""data_processing: validate raw transactions, quarantine bad rows, build point-in-time features."""

from kedro.pipeline import Pipeline

from fraud_kedro.pipelines.stages import stage, step

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """Create the data_processing pipeline."""
    return stage(
        "data_processing",
        [
            step(nodes.add_served_transactions,
                 ["raw_transactions", "served_transactions"],
                 "training_transactions"),
            step(nodes.validate_raw_transactions,
                 ["training_transactions", "params:features", "params:split.delay_days"],
                 ["validated_transactions", "quarantined_transactions"]),
            step(nodes.build_model_input_table,
                 ["validated_transactions", "params:features", "params:split.delay_days"],
                 "model_input_table"),
            step(nodes.make_feature_spec, ["params:features", "params:split.delay_days"], "feature_spec"),
        ],
    )
