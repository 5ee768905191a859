"""Monitoring: estimated and realised performance, drift, data quality, calibration, alerts."""

from fraud_kedro.pipelines.monitoring.pipeline import create_pipeline

__all__ = ["create_pipeline"]
