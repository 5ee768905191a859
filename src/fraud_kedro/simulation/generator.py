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
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from fraud_kedro.contract import RAW_COLUMNS

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
# Parameters
# --------------------------------------------------------------------------------------------


def _int(default: int, lo: int | None = None, hi: int | None = None) -> Any:
    return field(default=default, metadata={"kind": "int", "lo": lo, "hi": hi})


def _float(
    default: float, lo: float | None = None, hi: float | None = None, lo_open: bool = False
) -> Any:
    return field(
        default=default, metadata={"kind": "float", "lo": lo, "hi": hi, "lo_open": lo_open}
    )


def _bool(default: bool) -> Any:
    return field(default=default, metadata={"kind": "bool"})


def _pair(default: tuple[float, float], lo: float | None = None, hi: float | None = None) -> Any:
    return field(default=default, metadata={"kind": "pair", "lo": lo, "hi": hi})


def _section(cls: type) -> Any:
    return field(default_factory=cls, metadata={"kind": "section", "cls": cls})


@dataclass(frozen=True)
class AmountOutliersParams:
    """Scenario 1: every transaction with ``amount > threshold`` is fraud."""

    enabled: bool = _bool(True)
    threshold: float = _float(220.0, lo=0.0)


@dataclass(frozen=True)
class CompromisedTerminalsParams:
    """Scenario 2: terminals compromised each day; their next ``duration_days`` are fraud.

    ``n_per_day`` is the expected number of terminals per day: the integer part is drawn every
    day, the fractional part adds one more terminal with that probability.
    """

    enabled: bool = _bool(True)
    n_per_day: float = _float(2.0, lo=0.0)
    duration_days: int = _int(28, lo=1)


@dataclass(frozen=True)
class CompromisedCardsParams:
    """Scenario 3: customers compromised each day; a share of their next transactions are fraud.

    ``n_per_day`` is an expected count per day, as for compromised terminals.
    """

    enabled: bool = _bool(True)
    n_per_day: float = _float(3.0, lo=0.0)
    duration_days: int = _int(14, lo=1)
    share: float = _float(1 / 3, lo=0.0, hi=1.0)
    amount_multiplier: float = _float(5.0, lo=0.0, lo_open=True)


@dataclass(frozen=True)
class ScenariosParams:
    """The three base fraud scenarios."""

    amount_outliers: AmountOutliersParams = _section(AmountOutliersParams)
    compromised_terminals: CompromisedTerminalsParams = _section(CompromisedTerminalsParams)
    compromised_cards: CompromisedCardsParams = _section(CompromisedCardsParams)


@dataclass(frozen=True)
class SpendingChangeParams:
    """Drift: a share of customers multiply their amounts from ``start_day`` on."""

    enabled: bool = _bool(True)
    customer_share: float = _float(0.3, lo=0.0, hi=1.0)
    amount_multiplier: float = _float(1.6, lo=0.0, lo_open=True)


@dataclass(frozen=True)
class NewTerminalsParams:
    """Drift: ``n_terminals`` new terminals open; a share of transactions moves to them.

    A moved transaction goes to a new terminal within the customer's radius; a customer with no
    new terminal nearby keeps the old one.
    """

    enabled: bool = _bool(True)
    n_terminals: int = _int(2000, lo=1)
    transaction_share: float = _float(0.25, lo=0.0, hi=1.0)


@dataclass(frozen=True)
class CardTestingParams:
    """Drift: a new fraud pattern (scenario 4), bursts of small night-time card tests.

    Each day, ``n_cards_per_day`` customers (expected count) get a burst of
    ``1 + Poisson(tx_per_card - 1)`` transactions with amounts uniform in ``amount_range``, at
    times uniform in ``hours_range``, on random terminals anywhere.
    """

    enabled: bool = _bool(True)
    n_cards_per_day: float = _float(4.0, lo=0.0)
    tx_per_card: float = _float(10.0, lo=1.0)
    amount_range: tuple[float, float] = _pair((0.5, 5.0), lo=0.0)
    hours_range: tuple[float, float] = _pair((0.0, 5.0), lo=0.0, hi=24.0)


@dataclass(frozen=True)
class DriftParams:
    """Drift from ``start_day`` (day index, 0 = ``start_date``) to the end of the period."""

    enabled: bool = _bool(True)
    start_day: int = _int(150, lo=0)
    spending_change: SpendingChangeParams = _section(SpendingChangeParams)
    new_terminals: NewTerminalsParams = _section(NewTerminalsParams)
    card_testing: CardTestingParams = _section(CardTestingParams)


@dataclass(frozen=True)
class SimulationParams:
    """All parameters of the simulator (the ``simulation`` key of parameters_simulation.yml)."""

    seed: int = _int(42, lo=0)
    start_date: str = field(default="2018-04-01", metadata={"kind": "date"})
    n_days: int = _int(183, lo=1)
    n_customers: int = _int(5000, lo=1)
    n_terminals: int = _int(10000, lo=1)
    area_size: float = _float(100.0, lo=0.0, lo_open=True)
    radius: float = _float(5.0, lo=0.0, lo_open=True)
    amount_mean_range: tuple[float, float] = _pair((5.0, 100.0), lo=0.0)
    amount_std_ratio: float = _float(0.5, lo=0.0)
    tx_per_day_range: tuple[float, float] = _pair((0.0, 4.0), lo=0.0)
    time_mean_hours: float = _float(12.0, lo=0.0, hi=24.0)
    time_std_hours: float = _float(5.0, lo=0.0, lo_open=True)
    scenarios: ScenariosParams = _section(ScenariosParams)
    drift: DriftParams = _section(DriftParams)

    @property
    def start_timestamp(self) -> pd.Timestamp:
        """``start_date`` as a timezone-naive midnight timestamp."""
        return pd.Timestamp(self.start_date)

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> "SimulationParams":
        """Parse and validate the ``simulation`` parameter dictionary.

        Missing keys take their defaults; unknown keys, wrong types and out-of-range values
        raise.

        Args:
            params: The parameter mapping (not modified).

        Returns:
            The validated, immutable parameters.

        Raises:
            ValueError: With the dotted path of the offending key.
        """
        parsed = _parse_section(cls, params, "simulation")
        parsed._check_consistency()
        return parsed

    def _check_consistency(self) -> None:
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


def _parse_section(cls: type, data: Any, path: str) -> Any:
    """Build the dataclass ``cls`` from ``data``, checking keys, types and ranges."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path} must be a mapping, got {type(data).__name__}")
    allowed = {f.name: f for f in fields(cls)}
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed keys are {sorted(allowed)}")
    kwargs = {name: _coerce(allowed[name].metadata, data[name], f"{path}.{name}") for name in data}
    return cls(**kwargs)


def _coerce(meta: Mapping[str, Any], value: Any, path: str) -> Any:
    """Check and convert one parameter value according to its field metadata."""
    kind = meta["kind"]
    if kind == "section":
        return _parse_section(meta["cls"], value, path)
    if kind == "bool":
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{path} must be true or false, got {value!r}")
        return bool(value)
    if kind == "date":
        try:
            ts = pd.Timestamp(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path} must be a date like '2018-04-01', got {value!r}") from exc
        if ts is pd.NaT or ts.tzinfo is not None:
            raise ValueError(f"{path} must be a timezone-naive date, got {value!r}")
        return ts.normalize().strftime("%Y-%m-%d")
    if kind == "pair":
        if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
            raise ValueError(f"{path} must be a list [low, high], got {value!r}")
        pair = tuple(_number(v, f"{path}[{i}]", integer=False) for i, v in enumerate(value))
        if pair[0] > pair[1]:
            raise ValueError(f"{path} must have low <= high, got {list(pair)}")
        for v in pair:
            _check_bounds(v, meta, path)
        return pair
    number = _number(value, path, integer=kind == "int")
    _check_bounds(number, meta, path)
    return number


def _number(value: Any, path: str, integer: bool) -> Any:
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{path} must be a number, got {value!r}")
    if integer:
        if not isinstance(value, numbers.Integral):
            raise ValueError(f"{path} must be an integer, got {value!r}")
        return int(value)
    if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{path} must be a finite number, got {value!r}")
    return float(value)


def _check_bounds(value: float, meta: Mapping[str, Any], path: str) -> None:
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        relation = ">" if meta.get("lo_open") else ">="
        raise ValueError(f"{path} must be {relation} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{path} must be <= {hi}, got {value!r}")


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


def simulate_transactions(params: dict[str, Any]) -> pd.DataFrame:
    """Simulate card transactions with fraud scenarios and an optional drift.

    Args:
        params: The ``simulation`` parameters (see ``conf/base/parameters_simulation.yml``);
            not modified.

    Returns:
        Transactions sorted by ``timestamp`` then ``transaction_id``, with columns
        ``transaction_id`` (int64, ``0 .. n - 1``), ``timestamp`` (datetime64[ns]),
        ``customer_id`` (int64), ``terminal_id`` (int64), ``amount`` (float64, >= 0),
        ``is_fraud`` (int8, 0/1) and ``fraud_scenario`` (int64, 0 = legitimate).

    Raises:
        ValueError: If the parameters are invalid.
    """
    sim = SimulationParams.from_dict(params)
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
