"""A vectorised simulator of card transactions, with switchable fraud and drift scenarios.

The simulator follows the spirit of the transaction generator of the *Reproducible Machine
Learning for Credit Card Fraud Detection* handbook, rewritten with numpy so that no Python loop
runs over transactions or customers:

* customers live at a random home location and have their own spending habits (mean amount,
  standard deviation, mean number of transactions per day);
* terminals have random locations, and a customer only uses terminals within ``radius`` of home;
* each day a customer makes a Poisson number of transactions, around noon, of normal amounts.

Fraud scenarios (each switchable) then label transactions:

1. amount outliers: every transaction above a threshold is fraud;
2. compromised terminals: every transaction on a compromised terminal, for some days, is fraud;
3. compromised cards: a share of a compromised customer's transactions, for some days, are
   fraud and have their amount multiplied.

A drift scenario starting at ``drift.start_day`` changes the world for the rest of the period:
some customers spend more, a share of transactions moves to brand-new terminals, and a new fraud
pattern appears (card testing: bursts of small night-time amounts on stolen cards, scenario 4).
The spending change comes after the amount-outlier labels: from ``start_day`` on, large amounts
are no longer always fraud (concept drift), on top of the shift of the amount, customer and
terminal features (covariate drift) and the fraud pattern a pre-drift model never saw.

Order of the steps: legitimate transactions, scenario 1, drift (spending change, new
terminals), scenario 2, scenario 3, card testing (scenario 4), sort and number.

Every random component draws from its own stream, spawned from one ``numpy.random.SeedSequence``,
so the same parameters give the same data bit for bit, switching a scenario off leaves the other
components untouched, and the drift only changes transactions from ``start_day`` on.
"""

import logging
import math

import numpy as np
import pandas as pd

from fraud_kedro.contract import RAW_COLUMNS
from fraud_kedro.simulation.params import (
    SimulationParams,
)

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400

#: ``fraud_scenario`` codes of the output table.
LEGIT = 0
AMOUNT_OUTLIER = 1
COMPROMISED_TERMINAL = 2
COMPROMISED_CARD = 3
CARD_TESTING = 4
SCENARIO_NAMES: dict[int, str] = {
    AMOUNT_OUTLIER: "amount_outliers",
    COMPROMISED_TERMINAL: "compromised_terminals",
    COMPROMISED_CARD: "compromised_cards",
    CARD_TESTING: "card_testing",
}

#: Output columns, in order.
OUTPUT_COLUMNS: tuple[str, ...] = RAW_COLUMNS

# One independent random stream per component; the order must never change (reproducibility).
_STREAMS: tuple[str, ...] = (
    "customers",
    "terminals",
    "transactions",
    "compromised_terminals",
    "compromised_cards",
    "spending_change",
    "new_terminals",
    "card_testing",
)
_MAX_TIME_REDRAWS = 20
_DISTANCE_CHUNK_CELLS = 4_000_000


# --------------------------------------------------------------------------------------------
# Random streams and small helpers
# --------------------------------------------------------------------------------------------


def make_rngs(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per simulator component, all derived from ``seed``."""
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(ss) for name, ss in zip(_STREAMS, children, strict=True)}


def _daily_counts(rng: np.random.Generator, rate: float, n_days: int) -> np.ndarray:
    """Counts per day with mean ``rate``: the integer part plus a Bernoulli(fractional part)."""
    base = math.floor(rate)
    extra = rng.random(n_days) < (rate - base)
    return (base + extra).astype(np.int64)


def _draw_compromised(
    rng: np.random.Generator, rate: float, duration_days: int, n_days: int, n_entities: int
) -> np.ndarray:
    """Boolean ``(n_days, n_entities)`` matrix: is the entity compromised on that day.

    Each day, ``_daily_counts`` distinct entities are drawn; each stays compromised from that day
    for ``duration_days`` days.
    """
    counts = _daily_counts(rng, rate, n_days)
    k_max = int(counts.max()) if n_days else 0
    active = np.zeros((n_days, n_entities), dtype=bool)
    if k_max == 0:
        return active
    keys = rng.random((n_days, n_entities))
    smallest = np.argpartition(keys, k_max - 1, axis=1)[:, :k_max]
    ranked = np.take_along_axis(
        smallest, np.argsort(np.take_along_axis(keys, smallest, axis=1), axis=1), axis=1
    )
    day_idx = np.repeat(np.arange(n_days), k_max).reshape(n_days, k_max)
    take = np.arange(k_max)[None, :] < counts[:, None]
    days, entities = day_idx[take], ranked[take]
    diff = np.zeros((n_days + 1, n_entities), dtype=np.int32)
    np.add.at(diff, (days, entities), 1)
    np.add.at(diff, (np.minimum(days + duration_days, n_days), entities), -1)
    return np.cumsum(diff[:n_days], axis=0) > 0


def _terminals_within_radius(
    customer_xy: np.ndarray, terminal_xy: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Terminals within ``radius`` of each customer, as CSR ``(offsets, terminal_positions)``.

    The terminals of customer ``i`` are ``positions[offsets[i]:offsets[i + 1]]`` (row positions
    in ``terminal_xy``). Distances are computed in blocks of customers to bound memory.
    """
    n_customers, n_terminals = len(customer_xy), len(terminal_xy)
    block = max(1, _DISTANCE_CHUNK_CELLS // max(n_terminals, 1))
    r2 = radius * radius
    rows, cols = [], []
    for start in range(0, n_customers, block):
        xy = customer_xy[start : start + block]
        d2 = (xy[:, None, 0] - terminal_xy[None, :, 0]) ** 2
        d2 += (xy[:, None, 1] - terminal_xy[None, :, 1]) ** 2
        r, c = np.nonzero(d2 <= r2)
        rows.append(r + start)
        cols.append(c)
    row = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    col = np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)
    offsets = np.zeros(n_customers + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=n_customers), out=offsets[1:])
    return offsets, col.astype(np.int64)


def _pick_terminals(
    rng_uniform: np.ndarray, customers: np.ndarray, offsets: np.ndarray, positions: np.ndarray
) -> np.ndarray:
    """Uniform choice among each customer's terminals, given one uniform draw per row."""
    degree = offsets[customers + 1] - offsets[customers]
    pick = offsets[customers] + np.minimum(
        np.floor(rng_uniform * degree).astype(np.int64), degree - 1
    )
    return positions[pick]


def _with(tx: pd.DataFrame, **columns: np.ndarray) -> pd.DataFrame:
    """A new frame equal to ``tx`` with some columns replaced (``tx`` is left untouched)."""
    out = tx.copy()
    for name, values in columns.items():
        out[name] = values
    return out


def _label(
    tx: pd.DataFrame, mask: np.ndarray, scenario: int, amount: np.ndarray | None = None
) -> pd.DataFrame:
    """Mark the rows in ``mask`` as fraud of ``scenario`` (later scenarios override)."""
    is_fraud = tx["is_fraud"].to_numpy().copy()
    fraud_scenario = tx["fraud_scenario"].to_numpy().copy()
    is_fraud[mask] = 1
    fraud_scenario[mask] = scenario
    columns = {"is_fraud": is_fraud, "fraud_scenario": fraud_scenario}
    if amount is not None:
        columns["amount"] = amount
    logger.info(
        "Scenario %d (%s): %d transactions labelled fraud (%.4f%% of %d)",
        scenario,
        SCENARIO_NAMES[scenario],
        int(mask.sum()),
        100.0 * mask.mean() if len(mask) else 0.0,
        len(mask),
    )
    return _with(tx, **columns)


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def generate_customers(params: SimulationParams, rng: np.random.Generator) -> pd.DataFrame:
    """Customer profiles: home location and spending habits.

    Args:
        params: Simulation parameters.
        rng: The customers' random stream.

    Returns:
        One row per customer: ``customer_id``, ``x``, ``y``, ``mean_amount``, ``std_amount``,
        ``mean_tx_per_day``.
    """
    n = params.n_customers
    xy = rng.uniform(0.0, params.area_size, size=(n, 2))
    mean_amount = rng.uniform(*params.amount_mean_range, size=n)
    mean_tx = rng.uniform(*params.tx_per_day_range, size=n)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype=np.int64),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "mean_amount": mean_amount,
            "std_amount": mean_amount * params.amount_std_ratio,
            "mean_tx_per_day": mean_tx,
        }
    )


def generate_terminals(
    n_terminals: int, area_size: float, rng: np.random.Generator, first_id: int = 0
) -> pd.DataFrame:
    """Terminal locations, uniform on the square ``[0, area_size]^2``.

    Args:
        n_terminals: How many terminals.
        area_size: Side of the square.
        rng: The terminals' random stream.
        first_id: Identifier of the first terminal (the others follow).

    Returns:
        One row per terminal: ``terminal_id``, ``x``, ``y``.
    """
    xy = rng.uniform(0.0, area_size, size=(n_terminals, 2))
    return pd.DataFrame(
        {
            "terminal_id": np.arange(first_id, first_id + n_terminals, dtype=np.int64),
            "x": xy[:, 0],
            "y": xy[:, 1],
        }
    )


def _draw_seconds_of_day(
    rng: np.random.Generator, n: int, mean_hours: float, std_hours: float
) -> np.ndarray:
    """Normal times of day in seconds, redrawn when outside the day, finally clipped to it."""
    seconds = rng.normal(mean_hours * 3600.0, std_hours * 3600.0, size=n)
    for _ in range(_MAX_TIME_REDRAWS):
        outside = (seconds < 0) | (seconds >= SECONDS_PER_DAY)
        n_outside = int(outside.sum())
        if n_outside == 0:
            break
        seconds[outside] = rng.normal(mean_hours * 3600.0, std_hours * 3600.0, size=n_outside)
    return np.clip(seconds, 0, SECONDS_PER_DAY - 1).astype(np.int64)


def generate_transactions(
    customers: pd.DataFrame,
    terminals: pd.DataFrame,
    params: SimulationParams,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Legitimate transactions of every customer on every day, in generation order.

    Each customer makes ``Poisson(mean_tx_per_day)`` transactions per day, at a normal time of
    day, with a ``Normal(mean_amount, std_amount)`` amount (a negative draw is replaced by a
    ``Uniform(0, 2 * mean_amount)`` one), rounded to cents, on a terminal drawn uniformly among
    those within ``radius`` of home. Customers with no terminal nearby make no transaction.

    Args:
        customers: Output of :func:`generate_customers`.
        terminals: Output of :func:`generate_terminals`.
        params: Simulation parameters.
        rng: The transactions' random stream.

    Returns:
        Columns ``day`` (day index), ``seconds`` (since ``start_date``), ``customer_id``,
        ``terminal_id``, ``amount``, ``is_fraud`` (all 0) and ``fraud_scenario`` (all 0).
    """
    n_customers, n_days = len(customers), params.n_days
    offsets, positions = _terminals_within_radius(
        customers[["x", "y"]].to_numpy(), terminals[["x", "y"]].to_numpy(), params.radius
    )
    degree = np.diff(offsets)
    counts = rng.poisson(customers["mean_tx_per_day"].to_numpy(), size=(n_days, n_customers))
    counts[:, degree == 0] = 0
    flat = counts.ravel()
    n = int(flat.sum())
    cust = np.repeat(np.tile(np.arange(n_customers, dtype=np.int64), n_days), flat)
    day = np.repeat(np.repeat(np.arange(n_days, dtype=np.int64), n_customers), flat)
    seconds = day * SECONDS_PER_DAY + _draw_seconds_of_day(
        rng, n, params.time_mean_hours, params.time_std_hours
    )
    mean = customers["mean_amount"].to_numpy()[cust]
    amount = rng.normal(mean, customers["std_amount"].to_numpy()[cust])
    fallback = rng.uniform(0.0, 2.0 * mean)
    amount = np.round(np.where(amount < 0, fallback, amount), 2)
    terminal_pos = _pick_terminals(rng.random(n), cust, offsets, positions)
    terminal_id = terminals["terminal_id"].to_numpy()[terminal_pos]
    logger.info(
        "Generated %d transactions of %d customers (%d without terminal nearby) over %d days",
        n,
        n_customers,
        int((degree == 0).sum()),
        n_days,
    )
    return pd.DataFrame(
        {
            "day": day,
            "seconds": seconds,
            "customer_id": customers["customer_id"].to_numpy()[cust],
            "terminal_id": terminal_id,
            "amount": amount,
            "is_fraud": np.zeros(n, dtype=np.int8),
            "fraud_scenario": np.zeros(n, dtype=np.int64),
        }
    )


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _day_to_date(params: SimulationParams, day: int) -> str:
    return (params.start_timestamp + pd.Timedelta(days=day)).strftime("%Y-%m-%d")


def finalize_transactions(tx: pd.DataFrame, start_date: pd.Timestamp) -> pd.DataFrame:
    """The output table: sorted by time (ties in generation order), with ids ``0 .. n - 1``.

    Args:
        tx: Simulated transactions with ``seconds`` since ``start_date`` (not modified).
        start_date: Midnight of the first day.

    Returns:
        The output schema (see ``OUTPUT_COLUMNS``) with a fresh ``RangeIndex``.
    """
    seconds = tx["seconds"].to_numpy()
    order = np.argsort(seconds, kind="stable")
    start = np.datetime64(start_date.to_datetime64(), "ns")
    timestamp = start + seconds[order].astype("timedelta64[s]").astype("timedelta64[ns]")
    return pd.DataFrame(
        {
            "transaction_id": np.arange(len(tx), dtype=np.int64),
            "timestamp": timestamp.astype("datetime64[ns]"),
            "customer_id": tx["customer_id"].to_numpy()[order].astype(np.int64),
            "terminal_id": tx["terminal_id"].to_numpy()[order].astype(np.int64),
            "amount": tx["amount"].to_numpy()[order].astype(np.float64),
            "is_fraud": tx["is_fraud"].to_numpy()[order].astype(np.int8),
            "fraud_scenario": tx["fraud_scenario"].to_numpy()[order].astype(np.int64),
        },
        columns=list(OUTPUT_COLUMNS),
    )


def _log_summary(df: pd.DataFrame) -> None:
    n = len(df)
    counts = np.bincount(df["fraud_scenario"].to_numpy(), minlength=max(SCENARIO_NAMES) + 1)
    logger.info(
        "Simulated %d transactions, %d frauds (fraud rate %.4f%%)",
        n,
        int(df["is_fraud"].sum()),
        100.0 * df["is_fraud"].mean() if n else 0.0,
    )
    for code, name in SCENARIO_NAMES.items():
        logger.info(
            "  scenario %d %-22s %8d frauds (%.4f%%)",
            code,
            name,
            int(counts[code]),
            100.0 * counts[code] / n if n else 0.0,
        )
