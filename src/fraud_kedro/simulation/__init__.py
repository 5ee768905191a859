"""The transaction simulator library.

Parameters (:mod:`.params`), the legitimate world (:mod:`.generator`), fraud scenarios and drift
(:mod:`.scenarios`), and :func:`simulate` (:mod:`.simulator`), which runs them in their order.

Kedro-free: the ``simulation`` pipeline's node gets the parameters Kedro built and calls :func:`simulate`.
"""

from fraud_kedro.simulation.generator import (
    AMOUNT_OUTLIER,
    CARD_TESTING,
    COMPROMISED_CARD,
    COMPROMISED_TERMINAL,
    LEGIT,
    OUTPUT_COLUMNS,
    SCENARIO_NAMES,
)
from fraud_kedro.simulation.params import SimulationParams
from fraud_kedro.simulation.simulator import simulate

__all__ = [
    "AMOUNT_OUTLIER",
    "CARD_TESTING",
    "COMPROMISED_CARD",
    "COMPROMISED_TERMINAL",
    "LEGIT",
    "OUTPUT_COLUMNS",
    "SCENARIO_NAMES",
    "SimulationParams",
    "simulate",
]
