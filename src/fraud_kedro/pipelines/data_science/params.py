"""The ``threshold`` parameters (parameters_data_science.yml), validated by Kedro."""

from __future__ import annotations

from typing import Literal

from fraud_kedro.parameters import NonNegativeNumber, parameters


@parameters
class ThresholdParams:
    """How the decision threshold is chosen on the training window (docs/training.md)."""

    # cost: minimise missed-fraud loss + review cost; alert_budget: at most alerts_per_day alerts
    strategy: Literal["cost", "alert_budget"] = "cost"
    cost_missed_fraud: NonNegativeNumber = 200.0
    cost_alert_review: NonNegativeNumber = 5.0
    # below 1: at least one alert in the window
    alerts_per_day: NonNegativeNumber = 100
