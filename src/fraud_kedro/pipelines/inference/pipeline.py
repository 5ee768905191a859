"""inference: keys + features in, probability and decision out."""

from kedro.pipeline import Node, Pipeline

from .nodes import predict_fraud


def create_pipeline(**kwargs) -> Pipeline:
    """The inference pipeline; its only free input is ``scoring_input``."""
    return Pipeline(
        [
            Node(
                predict_fraud,
                inputs=["scoring_input", "fraud_model", "feature_spec", "decision_threshold"],
                outputs="predictions",
                name="predict_fraud_node",
            )
        ],
        tags=["inference"],
    )
