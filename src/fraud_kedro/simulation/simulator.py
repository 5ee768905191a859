"""The simulator's entry point: legitimate world, fraud scenarios and drift, in their fixed order."""

import logging

import pandas as pd

from fraud_kedro.simulation.generator import (
    _log_summary,
    finalize_transactions,
    generate_customers,
    generate_terminals,
    generate_transactions,
    make_rngs,
)
from fraud_kedro.simulation.params import SimulationParams
from fraud_kedro.simulation.scenarios import (
    apply_amount_outliers,
    apply_card_testing,
    apply_compromised_cards,
    apply_compromised_terminals,
    apply_drift,
)

logger = logging.getLogger(__name__)


def simulate(sim: SimulationParams) -> pd.DataFrame:
    """Simulate card transactions with fraud scenarios and an optional drift.

    Args:
        sim: The validated simulator parameters (:mod:`fraud_kedro.simulation.params`).

    Returns:
        Transactions sorted by ``timestamp`` then ``transaction_id``, with columns
        ``transaction_id`` (int64, ``0 .. n - 1``), ``timestamp`` (datetime64[ns]),
        ``customer_id`` (int64), ``terminal_id`` (int64), ``amount`` (float64, >= 0),
        ``is_fraud`` (int8, 0/1) and ``fraud_scenario`` (int64, 0 = legitimate).

    """
    rngs = make_rngs(sim.seed)
    logger.info(
        "Simulating %d customers, %d terminals, %d days from %s (seed %d)",
        sim.n_customers,
        sim.n_terminals,
        sim.n_days,
        sim.start_date,
        sim.seed,
    )
    customers = generate_customers(sim, rngs["customers"])
    terminals = generate_terminals(sim.n_terminals, sim.area_size, rngs["terminals"])
    tx = generate_transactions(customers, terminals, sim, rngs["transactions"])
    scenarios = sim.scenarios
    tx = apply_amount_outliers(tx, scenarios.amount_outliers)
    tx = apply_drift(tx, customers, sim, rngs)
    tx = apply_compromised_terminals(
        tx,
        scenarios.compromised_terminals,
        sim.n_days,
        sim.n_terminals,
        rngs["compromised_terminals"],
    )
    tx = apply_compromised_cards(
        tx, scenarios.compromised_cards, sim.n_days, sim.n_customers, rngs["compromised_cards"]
    )
    tx = apply_card_testing(tx, sim, rngs["card_testing"])
    df = finalize_transactions(tx, sim.start_timestamp)
    _log_summary(df)
    return df
