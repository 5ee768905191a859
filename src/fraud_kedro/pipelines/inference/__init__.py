"""The inference pipeline, exported with the model by kedro-mlflow's pipeline_ml_factory."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
