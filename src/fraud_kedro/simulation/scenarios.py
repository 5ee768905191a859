"""Fraud scenarios and drift of the simulator: functions that relabel or change a transaction table.

Each takes the table of :mod:`fraud_kedro.simulation.generator` and returns a new one (inputs are
never modified); the order in which :func:`fraud_kedro.simulation.simulator.simulate` applies them
is part of the reproducibility contract (module docstring of :mod:`~fraud_kedro.simulation.generator`).
"""

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from fraud_kedro.simulation.generator import (
    AMOUNT_OUTLIER,
    CARD_TESTING,
    COMPROMISED_CARD,
    COMPROMISED_TERMINAL,
    SCENARIO_NAMES,
    SECONDS_PER_DAY,
    _daily_counts,
    _day_to_date,
    _draw_compromised,
    _label,
    _pick_terminals,
    _terminals_within_radius,
    _with,
    generate_terminals,
)
from fraud_kedro.simulation.params import (
    AmountOutliersParams,
    CompromisedCardsParams,
    CompromisedTerminalsParams,
    NewTerminalsParams,
    SimulationParams,
    SpendingChangeParams,
)

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Fraud scenarios
# --------------------------------------------------------------------------------------------


def apply_amount_outliers(tx: pd.DataFrame, params: AmountOutliersParams) -> pd.DataFrame:
    """Scenario 1: label every transaction with ``amount > threshold`` as fraud.

    Args:
        tx: Transactions (not modified).
        params: Scenario parameters.

    Returns:
        A labelled copy of ``tx`` (``tx`` itself when the scenario is disabled).
    """
    if not params.enabled:
        return tx
    return _label(tx, tx["amount"].to_numpy() > params.threshold, AMOUNT_OUTLIER)


def apply_compromised_terminals(
    tx: pd.DataFrame,
    params: CompromisedTerminalsParams,
    n_days: int,
    n_terminals: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Scenario 2: every transaction on a compromised terminal is fraud.

    Each day, ``n_per_day`` terminals (among the original ``0 .. n_terminals - 1``) are
    compromised for ``duration_days`` days, starting that day.

    Args:
        tx: Transactions (not modified).
        params: Scenario parameters.
        n_days: Number of simulated days.
        n_terminals: Number of original terminals.
        rng: The scenario's random stream.

    Returns:
        A labelled copy of ``tx`` (``tx`` itself when the scenario is disabled).
    """
    if not params.enabled:
        return tx
    active = _draw_compromised(rng, params.n_per_day, params.duration_days, n_days, n_terminals)
    terminal = tx["terminal_id"].to_numpy()
    original = terminal < n_terminals
    mask = np.zeros(len(tx), dtype=bool)
    mask[original] = active[tx["day"].to_numpy()[original], terminal[original]]
    return _label(tx, mask, COMPROMISED_TERMINAL)


def apply_compromised_cards(
    tx: pd.DataFrame,
    params: CompromisedCardsParams,
    n_days: int,
    n_customers: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Scenario 3: a share of a compromised customer's transactions are fraud, with larger amounts.

    Each day, ``n_per_day`` customers are compromised for ``duration_days`` days, starting that
    day; each of their transactions in that period is fraudulent with probability ``share``, and
    its amount is multiplied by ``amount_multiplier``.

    Args:
        tx: Transactions (not modified).
        params: Scenario parameters.
        n_days: Number of simulated days.
        n_customers: Number of customers.
        rng: The scenario's random stream.

    Returns:
        A labelled copy of ``tx`` (``tx`` itself when the scenario is disabled).
    """
    if not params.enabled:
        return tx
    active = _draw_compromised(rng, params.n_per_day, params.duration_days, n_days, n_customers)
    chosen = rng.random(len(tx)) < params.share
    mask = active[tx["day"].to_numpy(), tx["customer_id"].to_numpy()] & chosen
    amount = tx["amount"].to_numpy().copy()
    amount[mask] = np.round(amount[mask] * params.amount_multiplier, 2)
    return _label(tx, mask, COMPROMISED_CARD, amount=amount)


# --------------------------------------------------------------------------------------------
# Drift
# --------------------------------------------------------------------------------------------


def apply_spending_change(
    tx: pd.DataFrame,
    params: SpendingChangeParams,
    start_day: int,
    n_customers: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Drift: a share of customers multiply their amounts from ``start_day`` on.

    Args:
        tx: Transactions (not modified).
        params: Drift part parameters.
        start_day: First drifted day.
        n_customers: Number of customers.
        rng: This drift part's random stream.

    Returns:
        A copy of ``tx`` with the new amounts (``tx`` itself when disabled).
    """
    if not params.enabled:
        return tx
    changed = rng.random(n_customers) < params.customer_share
    mask = (tx["day"].to_numpy() >= start_day) & changed[tx["customer_id"].to_numpy()]
    amount = tx["amount"].to_numpy().copy()
    amount[mask] = np.round(amount[mask] * params.amount_multiplier, 2)
    logger.info(
        "Drift spending_change: %d customers x%.2f, %d transactions changed",
        int(changed.sum()),
        params.amount_multiplier,
        int(mask.sum()),
    )
    return _with(tx, amount=amount)


def apply_new_terminals(
    tx: pd.DataFrame,
    customers: pd.DataFrame,
    params: NewTerminalsParams,
    sim: SimulationParams,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Drift: new terminals (ids from ``sim.n_terminals`` on) take a share of the transactions.

    Args:
        tx: Transactions (not modified).
        customers: Output of :func:`generate_customers`.
        params: Drift part parameters.
        sim: Simulation parameters (area, radius, number of original terminals, start day).
        rng: This drift part's random stream.

    Returns:
        A copy of ``tx`` with moved terminals (``tx`` itself when disabled).
    """
    if not params.enabled:
        return tx
    new = generate_terminals(params.n_terminals, sim.area_size, rng, first_id=sim.n_terminals)
    offsets, positions = _terminals_within_radius(
        customers[["x", "y"]].to_numpy(), new[["x", "y"]].to_numpy(), sim.radius
    )
    move_draw, pick_draw = rng.random(len(tx)), rng.random(len(tx))
    cust = tx["customer_id"].to_numpy()
    mask = (
        (tx["day"].to_numpy() >= sim.drift.start_day)
        & (move_draw < params.transaction_share)
        & (np.diff(offsets)[cust] > 0)
    )
    terminal = tx["terminal_id"].to_numpy().copy()
    chosen = _pick_terminals(pick_draw[mask], cust[mask], offsets, positions)
    terminal[mask] = new["terminal_id"].to_numpy()[chosen]
    logger.info(
        "Drift new_terminals: %d new terminals, %d transactions moved to them",
        params.n_terminals,
        int(mask.sum()),
    )
    return _with(tx, terminal_id=terminal)


def apply_drift(
    tx: pd.DataFrame,
    customers: pd.DataFrame,
    params: SimulationParams,
    rngs: Mapping[str, np.random.Generator],
) -> pd.DataFrame:
    """Behavioural drift from ``drift.start_day`` on: spending change and new terminals.

    It runs after scenario 1, so the changed customers' legitimate amounts may now exceed the
    outlier threshold without being fraud. The new fraud pattern of the drift is added by
    :func:`apply_card_testing`, after the base fraud scenarios, so that they do not relabel it.

    Args:
        tx: Transactions (not modified).
        customers: Output of :func:`generate_customers`.
        params: Simulation parameters.
        rngs: Random streams from :func:`make_rngs`.

    Returns:
        The drifted transactions (``tx`` itself when the drift is disabled).
    """
    drift = params.drift
    if not drift.enabled:
        return tx
    logger.info(
        "Drift starts on day %d (%s)", drift.start_day, _day_to_date(params, drift.start_day)
    )
    tx = apply_spending_change(
        tx, drift.spending_change, drift.start_day, params.n_customers, rngs["spending_change"]
    )
    return apply_new_terminals(tx, customers, drift.new_terminals, params, rngs["new_terminals"])


def apply_card_testing(
    tx: pd.DataFrame, params: SimulationParams, rng: np.random.Generator
) -> pd.DataFrame:
    """Drift's new fraud pattern (scenario 4): bursts of small night-time transactions.

    From ``drift.start_day`` on, each day ``n_cards_per_day`` random customers get a burst of
    ``1 + Poisson(tx_per_card - 1)`` fraudulent transactions, with amounts uniform in
    ``amount_range`` (rounded to cents), at times uniform in ``hours_range`` of that day, on
    terminals drawn uniformly among all terminals (new ones included when they exist).

    Args:
        tx: Transactions (not modified).
        params: Simulation parameters.
        rng: The card-testing random stream.

    Returns:
        ``tx`` with the new rows appended (``tx`` itself when disabled).
    """
    drift, card = params.drift, params.drift.card_testing
    if not (drift.enabled and card.enabled):
        return tx
    days = np.arange(drift.start_day, params.n_days, dtype=np.int64)
    cards_per_day = _daily_counts(rng, card.n_cards_per_day, len(days))
    card_day = np.repeat(days, cards_per_day)
    card_customer = rng.integers(0, params.n_customers, size=len(card_day), dtype=np.int64)
    burst = 1 + rng.poisson(card.tx_per_card - 1.0, size=len(card_day))
    day = np.repeat(card_day, burst)
    n = len(day)
    lo_s, hi_s = (h * 3600.0 for h in card.hours_range)
    second = np.minimum(rng.uniform(lo_s, hi_s, size=n).astype(np.int64), SECONDS_PER_DAY - 1)
    amount = np.round(rng.uniform(*card.amount_range, size=n), 2)
    n_all_terminals = params.n_terminals + (
        drift.new_terminals.n_terminals if drift.new_terminals.enabled else 0
    )
    new_rows = pd.DataFrame(
        {
            "day": day,
            "seconds": day * SECONDS_PER_DAY + second,
            "customer_id": np.repeat(card_customer, burst),
            "terminal_id": rng.integers(0, n_all_terminals, size=n, dtype=np.int64),
            "amount": amount,
            "is_fraud": np.ones(n, dtype=np.int8),
            "fraud_scenario": np.full(n, CARD_TESTING, dtype=np.int64),
        }
    )
    logger.info(
        "Scenario %d (%s): %d cards tested with %d transactions",
        CARD_TESTING,
        SCENARIO_NAMES[CARD_TESTING],
        len(card_day),
        n,
    )
    return pd.concat([tx, new_rows], ignore_index=True)
