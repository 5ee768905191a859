"""Parameters of the transaction simulator (the ``simulation`` key of parameters_simulation.yml).

Every key is optional (the defaults are the values in conf/base). The classes are parameter
dataclasses (:mod:`fraud_kedro.parameters`): Kedro builds ``SimulationParams`` for the simulation
node, and unknown keys, wrong types and out-of-range values stop the run naming the key's path.
"""

from __future__ import annotations

import math
from dataclasses import field
from typing import Annotated, Any

import pandas as pd
from pydantic import BeforeValidator, Field, StrictBool

from fraud_kedro.parameters import (
    Count,
    Hour,
    HourRange,
    NonNegative,
    NonNegativeInt,
    Positive,
    Range,
    Share,
    parameters,
)


def _date(value: Any) -> str:
    """A timezone-naive date (a string or date), as ``YYYY-MM-DD``."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"must be a date like '2018-04-01', got {value!r}") from exc
    if ts is pd.NaT or ts.tzinfo is not None:
        raise ValueError(f"must be a timezone-naive date, got {value!r}")
    return ts.normalize().strftime("%Y-%m-%d")


@parameters
class AmountOutliersParams:
    """Scenario 1: every transaction with ``amount > threshold`` is fraud."""

    enabled: StrictBool = True
    threshold: NonNegative = 220.0


@parameters
class CompromisedTerminalsParams:
    """Scenario 2: terminals compromised each day; their next ``duration_days`` are fraud.

    ``n_per_day`` is the expected number of terminals per day: the integer part is drawn every
    day, the fractional part adds one more terminal with that probability.
    """

    enabled: StrictBool = True
    n_per_day: NonNegative = 2.0
    duration_days: Count = 28


@parameters
class CompromisedCardsParams:
    """Scenario 3: customers compromised each day; a share of their next transactions are fraud.

    ``n_per_day`` is an expected count per day, as for compromised terminals.
    """

    enabled: StrictBool = True
    n_per_day: NonNegative = 3.0
    duration_days: Count = 14
    share: Share = 1 / 3
    amount_multiplier: Positive = 5.0


@parameters
class ScenariosParams:
    """The three base fraud scenarios."""

    amount_outliers: AmountOutliersParams = field(default_factory=AmountOutliersParams)
    compromised_terminals: CompromisedTerminalsParams = field(default_factory=CompromisedTerminalsParams)
    compromised_cards: CompromisedCardsParams = field(default_factory=CompromisedCardsParams)


@parameters
class SpendingChangeParams:
    """Drift: a share of customers multiply their amounts from ``start_day`` on."""

    enabled: StrictBool = True
    customer_share: Share = 0.3
    amount_multiplier: Positive = 1.6


@parameters
class NewTerminalsParams:
    """Drift: ``n_terminals`` new terminals open; a share of transactions moves to them.

    A moved transaction goes to a new terminal within the customer's radius; a customer with no
    new terminal nearby keeps the old one.
    """

    enabled: StrictBool = True
    n_terminals: Count = 2000
    transaction_share: Share = 0.25


@parameters
class CardTestingParams:
    """Drift: a new fraud pattern (scenario 4), bursts of small night-time card tests.

    Each day, ``n_cards_per_day`` customers (expected count) get a burst of
    ``1 + Poisson(tx_per_card - 1)`` transactions with amounts uniform in ``amount_range``, at
    times uniform in ``hours_range``, on random terminals anywhere.
    """

    enabled: StrictBool = True
    n_cards_per_day: NonNegative = 4.0
    tx_per_card: Annotated[float, Field(strict=True, ge=1, allow_inf_nan=False)] = 10.0
    amount_range: Range = (0.5, 5.0)
    hours_range: HourRange = (0.0, 5.0)


@parameters
class DriftScenarioParams:
    """Drift from ``start_day`` (day index, 0 = ``start_date``) to the end of the period."""

    enabled: StrictBool = True
    start_day: NonNegativeInt = 150
    spending_change: SpendingChangeParams = field(default_factory=SpendingChangeParams)
    new_terminals: NewTerminalsParams = field(default_factory=NewTerminalsParams)
    card_testing: CardTestingParams = field(default_factory=CardTestingParams)


@parameters
class SimulationParams:
    """All parameters of the simulator (the ``simulation`` key of parameters_simulation.yml)."""

    seed: NonNegativeInt = 42
    start_date: Annotated[str, BeforeValidator(_date)] = "2018-04-01"
    n_days: Count = 183
    n_customers: Count = 5000
    n_terminals: Count = 10000
    area_size: Positive = 100.0
    radius: Positive = 5.0
    amount_mean_range: Range = (5.0, 100.0)
    amount_std_ratio: NonNegative = 0.5
    tx_per_day_range: Range = (0.0, 4.0)
    time_mean_hours: Hour = 12.0
    time_std_hours: Positive = 5.0
    scenarios: ScenariosParams = field(default_factory=ScenariosParams)
    drift: DriftScenarioParams = field(default_factory=DriftScenarioParams)

    @property
    def start_timestamp(self) -> pd.Timestamp:
        """``start_date`` as a timezone-naive midnight timestamp."""
        return pd.Timestamp(self.start_date)

    def __post_init__(self) -> None:
        terminals = self.scenarios.compromised_terminals
        if terminals.enabled and math.ceil(terminals.n_per_day) > self.n_terminals:
            raise ValueError(
                "simulation.scenarios.compromised_terminals.n_per_day "
                f"({terminals.n_per_day}) exceeds n_terminals ({self.n_terminals})"
            )
        cards = self.scenarios.compromised_cards
        if cards.enabled and math.ceil(cards.n_per_day) > self.n_customers:
            raise ValueError(
                "simulation.scenarios.compromised_cards.n_per_day "
                f"({cards.n_per_day}) exceeds n_customers ({self.n_customers})"
            )
        if self.drift.enabled and self.drift.start_day >= self.n_days:
            raise ValueError(
                f"simulation.drift.start_day ({self.drift.start_day}) must be smaller than "
                f"n_days ({self.n_days}) when the drift is enabled"
            )

