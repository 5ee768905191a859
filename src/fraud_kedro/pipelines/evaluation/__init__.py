"""Test-window metrics, slices, plots, candidate report and the champion/challenger quality gate."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
