"""Validation of raw transactions and point-in-time feature engineering."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
