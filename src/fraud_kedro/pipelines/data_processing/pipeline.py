"""data_processing: validate raw transactions, quarantine bad rows, build point-in-time features."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    add_served_transactions,
    build_model_input_table,
    make_feature_spec,
    validate_raw_transactions,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the data_processing pipeline."""
    return Pipeline(
        [
            Node(
                add_served_transactions,
                inputs=["raw_transactions", "served_transactions"],
                outputs="training_transactions",
                name="add_served_transactions_node",
            ),
            Node(
                validate_raw_transactions,
                inputs=["training_transactions", "params:features", "params:split.delay_days"],
                outputs=["validated_transactions", "quarantined_transactions"],
                name="validate_raw_transactions_node",
            ),
            Node(
                build_model_input_table,
                inputs=["validated_transactions", "params:features", "params:split.delay_days"],
                outputs="model_input_table",
                name="build_model_input_table_node",
            ),
            Node(
                make_feature_spec,
                inputs=["params:features", "params:split.delay_days"],
                outputs="feature_spec",
                name="make_feature_spec_node",
            ),
        ],
        tags=["data_processing"],
        namespace="data_processing",  # kedro-viz collapses the stage; dataset names stay global
        prefix_datasets_with_namespace=False,
    )
