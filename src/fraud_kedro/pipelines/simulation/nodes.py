"""The node of the ``simulation`` pipeline (the simulator itself is :mod:`fraud_kedro.simulation`)."""

from __future__ import annotations

import pandas as pd

from fraud_kedro.simulation import (
    CARD_TESTING,
    OUTPUT_COLUMNS,
    SCENARIO_NAMES,
    SimulationParams,
    simulate,
)

__all__ = ["CARD_TESTING", "OUTPUT_COLUMNS", "SCENARIO_NAMES", "SimulationParams", "simulate_transactions"]


def simulate_transactions(params: SimulationParams) -> pd.DataFrame:
    """Simulate card transactions with fraud scenarios and an optional drift.

    Args:
        params: The ``simulation`` parameters (``conf/base/parameters_simulation.yml``), built
            and validated by Kedro from the type hint.

    Returns:
        The raw transaction table (docs/contract.md), sorted by time.
    """
    return simulate(params)
