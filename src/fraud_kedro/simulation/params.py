"""Parameters of the transaction simulator (the ``simulation`` key of parameters_simulation.yml).

Every key is optional (the defaults are the values in conf/base); unknown keys, wrong types and
out-of-range values raise a ``ValueError`` naming the dotted path of the key. The bounds live in
each field's metadata and :meth:`SimulationParams.from_dict` checks them.
"""

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd


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
class DriftScenarioParams:
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
    drift: DriftScenarioParams = _section(DriftScenarioParams)

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
