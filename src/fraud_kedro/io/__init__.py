"""Kedro datasets of the project (they import :mod:`fraud_kedro.store` and others normally)."""
