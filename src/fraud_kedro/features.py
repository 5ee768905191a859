"""Point-in-time feature engineering, shared by the batch pipeline and the scoring service.

One function, :func:`compute_features`, serves both paths: the batch pipeline calls it on the whole
transaction table, the service calls it on a new transaction together with its customer's and
terminal's recent history. A feature of a transaction only ever uses

* the transaction itself and earlier transactions of the same customer (customer windows), and
* transactions of the same terminal that are older than the label delay, with their labels
  (terminal windows), because a bank learns of fraud only once chargebacks arrive.

Windows are computed with sorted keys and ``numpy.searchsorted`` on per-group cumulative sums, so
the batch path is vectorised and the online path costs microseconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class ColumnNames:
    """Names of the raw transaction columns (the data contract)."""

    transaction_id: str = "transaction_id"
    timestamp: str = "timestamp"
    customer_id: str = "customer_id"
    terminal_id: str = "terminal_id"
    amount: str = "amount"
    label: str = "is_fraud"


@dataclass(frozen=True)
class FeatureParams:
    """Parameters of the feature engineering (``features`` in parameters_data_processing.yml)."""

    customer_windows_days: tuple[int, ...] = (1, 7, 30)
    terminal_windows_days: tuple[int, ...] = (1, 7, 30)
    terminal_label_delay_days: int = 7
    night_start_hour: int = 22
    night_end_hour: int = 6
    columns: ColumnNames = field(default_factory=ColumnNames)

    @classmethod
    def from_dict(cls, params: dict | None) -> FeatureParams:
        """Build from the ``features`` parameter dictionary, with clear errors."""
        params = dict(params or {})
        columns = ColumnNames(**params.pop("columns", {}) or {})
        unknown = set(params) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"Unknown feature parameters: {sorted(unknown)}")
        for key in ("customer_windows_days", "terminal_windows_days"):
            if key in params:
                params[key] = tuple(int(w) for w in params[key])
                if any(w <= 0 for w in params[key]):
                    raise ValueError(f"features.{key} must be positive day counts")
        if int(params.get("terminal_label_delay_days", 7)) < 0:
            raise ValueError("features.terminal_label_delay_days must be >= 0")
        return cls(columns=columns, **params)

    @property
    def history_days(self) -> int:
        """How many days of history a transaction's features look back."""
        return max(
            max(self.customer_windows_days, default=0),
            max(self.terminal_windows_days, default=0) + self.terminal_label_delay_days,
        )


def feature_names(params: FeatureParams) -> list[str]:
    """The ordered list of model features that :func:`compute_features` produces."""
    names = [params.columns.amount, "hour", "is_weekend", "is_night"]
    for w in params.customer_windows_days:
        names += [
            f"customer_nb_tx_{w}d",
            f"customer_mean_amount_{w}d",
            f"customer_amount_ratio_{w}d",
        ]
    for w in params.terminal_windows_days:
        names += [f"terminal_nb_tx_{w}d", f"terminal_risk_{w}d"]
    return names


def _seconds(ts: pd.Series) -> np.ndarray:
    """Timestamps as int64 seconds since the epoch (timezone-naive, UTC if aware)."""
    values = pd.to_datetime(ts)
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.to_numpy(dtype="datetime64[s]").astype(np.int64)


def _group_keys(groups: pd.Series, seconds: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort order and a monotone key ``group * span + time`` for windowed look-ups in one pass."""
    codes = pd.factorize(groups, sort=False)[0].astype(np.int64)
    order = np.lexsort((ids, seconds, codes))
    t0 = seconds.min() if len(seconds) else 0
    span = int(seconds.max() - t0) + 2 * 10_000 * _SECONDS_PER_DAY + 1 if len(seconds) else 1
    key = codes[order] * span + (seconds[order] - t0)
    return order, key, codes[order]


def _window_stats(
    key: np.ndarray,
    codes_sorted: np.ndarray,
    values: np.ndarray,
    lo_seconds: int,
    hi_seconds: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Count and sum of ``values`` over each row's group window.

    The window of a row at time t holds the rows of its group with time in ``(t - lo, t - hi]``,
    or, when ``hi_seconds`` is None, the rows up to and including the row itself.
    """
    n = len(key)
    if hi_seconds is None:
        end = np.arange(1, n + 1)
    else:
        end = np.searchsorted(key, key - hi_seconds, side="right")
    start = np.searchsorted(key, key - lo_seconds, side="right")
    end = np.maximum(end, start)
    count = (end - start).astype(np.int64)
    # per-group exact cumulative sums: both ends of a window lie in the row's own group
    group_start = np.r_[0, np.flatnonzero(np.diff(codes_sorted)) + 1]
    group_of_row = np.repeat(np.arange(len(group_start)), np.diff(np.r_[group_start, n]))
    cs = pd.Series(values).groupby(group_of_row, sort=False).cumsum().to_numpy() if n else values
    first = group_start[group_of_row] if n else np.array([], dtype=np.int64)

    def prefix(idx: np.ndarray) -> np.ndarray:
        # sum of the group's values strictly before sorted position idx (idx >= group start)
        out = np.zeros(len(idx))
        has = idx > first
        out[has] = cs[idx[has] - 1]
        return out

    total = prefix(end) - prefix(start)
    return count, total


def compute_features(
    transactions: pd.DataFrame,
    params: FeatureParams,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Point-in-time features for ``transactions``, optionally given earlier ``history``.

    Args:
        transactions: Raw transactions in the contract schema; the label column is optional.
        params: Feature parameters.
        history: Earlier transactions of the same customers and terminals (with labels where
            known). Used by the scoring service; the batch pipeline passes the whole table as
            ``transactions`` and no history.

    Returns:
        One row per transaction of ``transactions`` in the same order: the identifier, timestamp,
        customer and terminal columns, then the features of :func:`feature_names`.
    """
    c = params.columns
    n_new = len(transactions)
    frames = [transactions] if history is None or history.empty else [history, transactions]
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else transactions
    seconds = _seconds(data[c.timestamp])
    ids = pd.factorize(data[c.transaction_id].astype(str))[0] if data[
        c.transaction_id
    ].dtype == object else data[c.transaction_id].to_numpy()
    amount = data[c.amount].to_numpy(dtype=np.float64)
    if c.label in data.columns:
        label = pd.to_numeric(data[c.label], errors="coerce").fillna(0).to_numpy(dtype=np.float64)
    else:
        label = np.zeros(len(data))

    out = pd.DataFrame(index=pd.RangeIndex(len(data)))
    out[c.amount] = amount
    ts = pd.to_datetime(data[c.timestamp])
    hour = ts.dt.hour.to_numpy()
    out["hour"] = hour.astype(np.int64)
    out["is_weekend"] = (ts.dt.dayofweek.to_numpy() >= 5).astype(np.int64)
    if params.night_start_hour > params.night_end_hour:
        night = (hour >= params.night_start_hour) | (hour < params.night_end_hour)
    else:
        night = (hour >= params.night_start_hour) & (hour < params.night_end_hour)
    out["is_night"] = night.astype(np.int64)

    order, key, codes = _group_keys(data[c.customer_id], seconds, ids)
    for w in params.customer_windows_days:
        count, total = _window_stats(key, codes, amount[order], w * _SECONDS_PER_DAY, None)
        mean = total / np.maximum(count, 1)
        ratio = np.divide(amount[order], mean, out=np.zeros(len(mean)), where=mean > 0)
        for name, values in (
            (f"customer_nb_tx_{w}d", count),
            (f"customer_mean_amount_{w}d", mean),
            (f"customer_amount_ratio_{w}d", ratio),
        ):
            col = np.empty(len(data), dtype=values.dtype)
            col[order] = values
            out[name] = col

    order, key, codes = _group_keys(data[c.terminal_id], seconds, ids)
    delay = params.terminal_label_delay_days * _SECONDS_PER_DAY
    for w in params.terminal_windows_days:
        count, frauds = _window_stats(
            key, codes, label[order], delay + w * _SECONDS_PER_DAY, delay
        )
        risk = np.divide(frauds, count, out=np.zeros(len(count)), where=count > 0)
        for name, values in ((f"terminal_nb_tx_{w}d", count), (f"terminal_risk_{w}d", risk)):
            col = np.empty(len(data), dtype=values.dtype)
            col[order] = values
            out[name] = col

    result = out.iloc[len(data) - n_new :].reset_index(drop=True)
    keys = transactions[[c.transaction_id, c.timestamp, c.customer_id, c.terminal_id]]
    return pd.concat([keys.reset_index(drop=True), result], axis=1)
