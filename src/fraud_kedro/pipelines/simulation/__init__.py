"""The ``simulation`` pipeline: synthetic card transactions with fraud and drift scenarios."""

from fraud_kedro.pipelines.simulation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
