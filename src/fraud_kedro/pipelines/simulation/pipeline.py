"""The ``simulation`` pipeline: one node that simulates the raw transaction table."""

from typing import Any

from kedro.pipeline import Node, Pipeline

from fraud_kedro.pipelines.simulation.nodes import simulate_transactions


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Build the simulation pipeline.

    Args:
        **kwargs: Unused; accepted for Kedro's pipeline discovery.

    Returns:
        A pipeline turning ``params:simulation`` into the ``raw_transactions`` dataset.
    """
    return Pipeline(
        [
            Node(
                func=simulate_transactions,
                inputs="params:simulation",
                outputs="raw_transactions",
                name="simulate_transactions_node",
                tags=["simulation"],
            )
        ],
        namespace="simulation",  # kedro-viz collapses the stage; dataset names stay global
        prefix_datasets_with_namespace=False,
    )
