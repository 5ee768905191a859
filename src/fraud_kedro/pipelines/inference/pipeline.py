"""inference: keys + features in, probability and decision out."""

from kedro.pipeline import Pipeline

from fraud_kedro.pipelines.stages import step

from .nodes import predict_fraud


def create_pipeline(**kwargs) -> Pipeline:
    """The inference pipeline; its only free input is ``scoring_input``."""
    return Pipeline(
        [
            step(predict_fraud,
                 ["scoring_input", "fraud_model", "feature_spec", "decision_threshold"],
                 "predictions")
        ],
        tags=["inference"],
    )
