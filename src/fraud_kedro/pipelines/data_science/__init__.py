"""Time split, Optuna tuning on prequential folds, calibrated training, decision threshold."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
