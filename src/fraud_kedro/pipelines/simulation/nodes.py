"""The node of the ``simulation`` pipeline (the simulator itself is :mod:`fraud_kedro.simulation`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraud_kedro.simulation import (
    CARD_TESTING,
    OUTPUT_COLUMNS,
    SCENARIO_NAMES,
    SimulationParams,
    simulate,
)

__all__ = ["CARD_TESTING", "OUTPUT_COLUMNS", "SCENARIO_NAMES", "SimulationParams", "simulate_transactions"]


def simulate_transactions(params: dict[str, Any]) -> pd.DataFrame:
    """Simulate card transactions with fraud scenarios and an optional drift.

    Args:
        params: The ``simulation`` parameters (see ``conf/base/parameters_simulation.yml``);
            not modified.

    Returns:
        The raw transaction table (docs/contract.md), sorted by time.

    Raises:
        ValueError: If the parameters are invalid, naming the key.
    """
    return simulate(SimulationParams.from_dict(params))
