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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from fraud_kedro.contract import DEFAULT_LABEL_DELAY_DAYS, ColumnNames
from fraud_kedro.parameters import Count, NonNegativeNumber, parameters

__all__ = ["ColumnNames", "FeatureParams", "compute_features", "feature_names"]

logger = logging.getLogger(__name__)

_SECONDS_PER_DAY = 86_400
#: the history groups of :func:`compute_features` (its ``groups`` argument)
GROUPS = ("customer", "terminal")


#: raw schemas of the ``features.schema`` key: the contract's columns, or the ULB file layout
#: (:mod:`fraud_kedro.creditcard`)
CONTRACT_SCHEMA, CREDITCARD_SCHEMA = "contract", "creditcard"
#: keys of the ``features`` section that describe the raw file, not the features: kept out of the
#: feature spec's ``params`` (the spec records them under ``schema``)
SCHEMA_KEYS = ("schema", "start_date")


@parameters
class FeatureParams:
    """The ``features`` parameters (parameters_data_processing.yml), validated by Kedro.

    The same class reads a model's feature spec (``FeatureParams(**spec["params"])``) in the
    scoring service, where ``terminal_label_delay_days`` is set.
    """

    customer_windows_days: tuple[Count, ...] = (1, 7, 30)
    terminal_windows_days: tuple[Count, ...] = (1, 7, 30)
    # not a conf/ key: the pipeline fills in the one label delay, ``split.delay_days``; unset,
    # :attr:`label_delay_days` is the contract's default
    terminal_label_delay_days: NonNegativeNumber | None = None
    night_start_hour: Annotated[int, Field(strict=True, ge=0, le=23)] = 22
    night_end_hour: Annotated[int, Field(strict=True, ge=0, le=23)] = 6
    # optional feature groups beyond the classic baselines (EXTRA_GROUPS; docs/training.md has the
    # ablation that decides which ones are on)
    extra_features: tuple[Literal["recency", "amount_zscore", "card_terminal"], ...] = ()
    columns: ColumnNames = field(default_factory=ColumnNames)
    schema: Literal["contract", "creditcard"] = CONTRACT_SCHEMA
    # creditcard: the date of Time = 0 (midnight)
    start_date: str | None = None

    def __post_init__(self) -> None:
        if self.schema == CREDITCARD_SCHEMA:
            if not self.start_date:
                raise ValueError("features.start_date is required with schema creditcard")
            try:
                start = pd.Timestamp(str(self.start_date))
            except ValueError as exc:
                raise ValueError(f"features.start_date {self.start_date!r} is not a date") from exc
            object.__setattr__(self, "start_date", str(start.isoformat()))
        elif self.start_date is not None:
            raise ValueError("features.start_date only applies to schema creditcard")

    @property
    def label_delay_days(self) -> float:
        """The label delay the terminal windows look past."""
        if self.terminal_label_delay_days is None:
            return DEFAULT_LABEL_DELAY_DAYS
        return self.terminal_label_delay_days

    def spec_params(self) -> dict[str, Any]:
        """The feature-engineering parameters for a model's feature spec (no raw-schema keys)."""
        params = asdict(self)
        for key in SCHEMA_KEYS:
            params.pop(key)
        return params

    @property
    def history_days(self) -> int:
        """How many days of history a transaction's features look back."""
        return max(
            max(self.customer_windows_days, default=0),
            max(self.terminal_windows_days, default=0) + self.label_delay_days,
        )


# Feature groups the classic baselines lack. Every one reads only the card's own earlier rows
# (the customer history the service fetches), so batch and online stay equal and point-in-time.
#   recency: seconds since the card's previous transaction (capped at the longest card window)
#   amount_zscore: amount in standard deviations of the card's own amounts, per card window
#   card_terminal: the card's earlier transactions at this terminal in the longest card window
EXTRA_GROUPS = ("recency", "amount_zscore", "card_terminal")


def extra_feature_names(params: FeatureParams) -> list[str]:
    """Names of the optional groups' features, in output order."""
    names = []
    longest = max(params.customer_windows_days, default=0)
    if "recency" in params.extra_features and longest:
        names.append("customer_seconds_since_last_tx")
    if "amount_zscore" in params.extra_features:
        names += [f"customer_amount_zscore_{w}d" for w in params.customer_windows_days]
    if "card_terminal" in params.extra_features and longest:
        names.append(f"customer_terminal_nb_tx_{longest}d")
    return names


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
    return names + extra_feature_names(params)


def _seconds(ts: pd.Series) -> np.ndarray:
    """Timestamps as int64 seconds since the epoch (timezone-naive, UTC if aware)."""
    values = ts if pd.api.types.is_datetime64_any_dtype(ts) else pd.to_datetime(ts)
    if values.dt.tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.to_numpy(dtype="datetime64[s]").astype(np.int64)


def _pair_codes(customers: pd.Series | np.ndarray, terminals: pd.Series | np.ndarray) -> np.ndarray:
    """One int64 code per (card, terminal) pair."""
    card = pd.factorize(customers, sort=False)[0].astype(np.int64)
    terminal, uniques = pd.factorize(terminals, sort=False)
    return card * max(1, len(uniques)) + terminal.astype(np.int64)


def _group_keys(groups: pd.Series, seconds: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort order and a monotone key ``group * span + time`` for windowed look-ups in one pass."""
    codes = pd.factorize(groups, sort=False)[0].astype(np.int64)
    order = np.lexsort((ids, seconds, codes))
    t0 = seconds.min() if len(seconds) else 0
    span = int(seconds.max() - t0) + 2 * 10_000 * _SECONDS_PER_DAY + 1 if len(seconds) else 1
    key = codes[order] * span + (seconds[order] - t0)
    return order, key


def _window_bounds(
    key: np.ndarray, rows: np.ndarray, lo_seconds: int, hi_seconds: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions ``[start, end)`` of the group windows of the rows at sorted ``rows``.

    The window of a row at time t holds the rows of its group with time in ``(t - lo, t - hi]``,
    or, when ``hi_seconds`` is None, the rows up to and including the row itself.
    """
    if hi_seconds is None:
        end = rows + 1
    else:
        # never past the row itself: with no delay, its own label (and later rows at the same
        # second) must not count, as in the online path
        end = np.minimum(np.searchsorted(key, key[rows] - hi_seconds, side="right"), rows)
    start = np.searchsorted(key, key[rows] - lo_seconds, side="right")
    return start, np.maximum(end, start)


def _output_rows(order: np.ndarray, n: int, n_new: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions of the rows to return (the last ``n_new``), ascending, and where each
    goes in the output. Windows are computed for these rows only (the history rows of the online
    path are not returned), visited in sorted order so that the bounds stay monotone."""
    if n_new == n:  # the batch path: every row, the output order is ``order`` itself
        return np.arange(n), order
    rank = np.empty(n, dtype=np.intp)
    rank[order] = np.arange(n)
    positions = rank[n - n_new :]
    visit = np.argsort(positions, kind="stable")
    return positions[visit], visit


def _window_sums(values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sum of ``values[start:end]`` for every row, adding up only the rows of the window.

    A difference of running sums would carry the rounding of every earlier row of the group, so a
    transaction would get (slightly) different features with a different amount of history before
    it: the scoring service, which keeps only ``history_days`` of history, would then disagree
    with the batch pipeline in the last bits, enough to flip a tree split. Summing each window on
    its own makes a feature depend only on the rows inside its window. ``reduceat`` over the
    interleaved bounds (ascending) stays vectorised: the work is the total window length.
    """
    if len(start) == 0:
        return np.zeros(0)
    bounds = np.empty(2 * len(start), dtype=np.intp)
    bounds[0::2] = start
    bounds[1::2] = end  # end <= len(values): that index is the padding zero
    sums = np.add.reduceat(np.append(values, 0.0), bounds)[0::2]
    return np.where(end > start, sums, 0.0)


def _parts(frames: list[pd.DataFrame], name: str) -> list[pd.Series | None]:
    """A column of each frame (None where a frame lacks it), each read once: in pandas 3 every
    ``frame[name]`` builds a new Series."""
    return [f[name] if name in f.columns else None for f in frames]


def _concat(parts: list[pd.Series | None], frames: list[pd.DataFrame]) -> pd.Series | None:
    """The column of the concatenated frames (None when no frame has it)."""
    if all(part is None for part in parts):
        return None
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    # a frame without the column contributes missing values
    filled = [
        part if part is not None else pd.Series(np.nan, index=f.index)
        for part, f in zip(parts, frames, strict=True)
    ]
    return pd.concat(filled, ignore_index=True)


def _plain(parts: list[pd.Series | None], kinds: str) -> np.ndarray | None:
    """The column as one numpy array when every frame holds it with a plain numpy dtype of one of
    ``kinds`` (the same dtype in all frames for datetimes); else None and the caller takes the
    pandas path. The fast paths give exactly what the pandas path gives on these inputs; they
    exist because each pandas call costs tens of microseconds on the online path."""
    if any(part is None for part in parts):
        return None
    dtypes = {part.dtype for part in parts}
    if not all(isinstance(d, np.dtype) and d.kind in kinds for d in dtypes):
        return None
    if "M" in kinds and len(dtypes) > 1:
        return None
    arrays = [part.to_numpy() for part in parts]
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _labels(parts: list[pd.Series | None], frames: list[pd.DataFrame], n: int) -> np.ndarray:
    """Labels of the concatenated frames as float64, unknown (missing, NaN, unparseable) = 0."""
    if all(part is None for part in parts):
        return np.zeros(n)
    values = []
    for part, f in zip(parts, frames, strict=True):
        plain = np.zeros(len(f)) if part is None else _plain([part], "biuf")
        if plain is None:  # text or extension dtypes: pandas parses them
            column = _concat(parts, frames)
            return pd.to_numeric(column, errors="coerce").fillna(0).to_numpy(dtype=np.float64)
        values.append(np.asarray(plain, dtype=np.float64))
    label = np.concatenate(values)
    label[np.isnan(label)] = 0.0
    return label


def _groups(frames: list[pd.DataFrame], name: str) -> pd.Series | np.ndarray:
    """Customer or terminal ids of the concatenated frames, for ``pd.factorize``."""
    parts = _parts(frames, name)
    values = _plain(parts, "iuO")
    return _concat(parts, frames) if values is None else values


def compute_features(
    transactions: pd.DataFrame,
    params: FeatureParams,
    history: pd.DataFrame | None = None,
    groups: tuple[str, ...] = GROUPS,
) -> pd.DataFrame:
    """Point-in-time features for ``transactions``, optionally given earlier ``history``.

    Args:
        transactions: Raw transactions in the contract schema; the label column is optional.
        params: Feature parameters.
        history: Earlier transactions of the same customers and terminals (with labels where
            known). Used by the scoring service; the batch pipeline passes the whole table as
            ``transactions`` and no history.
        groups: The history features to compute, of :data:`GROUPS`. A group's features depend
            only on the rows of its own customer (or terminal), so a distributed engine computes
            each group on data partitioned by its key (:mod:`fraud_kedro.distributed.features`).

    Returns:
        One row per transaction of ``transactions`` in the same order: the identifier, timestamp,
        customer and terminal columns, then the features of :func:`feature_names` (those of the
        requested ``groups``).
    """
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown feature groups {sorted(unknown)}; known: {list(GROUPS)}")
    c = params.columns
    n_new = len(transactions)
    frames = [transactions] if history is None or history.empty else [history, transactions]
    n = sum(len(f) for f in frames)
    # only the needed columns are concatenated (a whole-frame concat costs more than the rest)
    stamp_parts = _parts(frames, c.timestamp)
    stamps = _plain(stamp_parts, "M")
    if stamps is not None and not np.isnat(stamps).any():
        # naive datetime64: numpy casts with floor semantics, as pandas' accessors compute
        seconds = stamps.astype("datetime64[s]").astype(np.int64)
        hour = (seconds // 3600) % 24
        day_of_week = (seconds // _SECONDS_PER_DAY + 3) % 7  # 1970-01-01 was a Thursday
    else:
        ts = pd.to_datetime(_concat(stamp_parts, frames))
        seconds = _seconds(ts)
        hour = ts.dt.hour.to_numpy()
        day_of_week = ts.dt.day_of_week.to_numpy()
    id_parts = _parts(frames, c.transaction_id)
    ids = _plain(id_parts, "iu")
    if ids is None:
        tx_ids = _concat(id_parts, frames)
        ids = (
            pd.factorize(tx_ids.astype(str))[0] if tx_ids.dtype == object else tx_ids.to_numpy()
        )
    amount_parts = _parts(frames, c.amount)
    amount = _plain(amount_parts, "biuf")
    if amount is None:
        amount = _concat(amount_parts, frames)
    amount = np.asarray(amount, dtype=np.float64)
    label = _labels(_parts(frames, c.label), frames, n)

    new = slice(n - n_new, None)  # the rows of ``transactions``
    features: dict[str, np.ndarray] = {c.amount: amount[new]}
    features["hour"] = hour.astype(np.int64)[new]
    features["is_weekend"] = (day_of_week >= 5).astype(np.int64)[new]
    if params.night_start_hour > params.night_end_hour:
        night = (hour >= params.night_start_hour) | (hour < params.night_end_hour)
    else:
        night = (hour >= params.night_start_hour) & (hour < params.night_end_hour)
    features["is_night"] = night.astype(np.int64)[new]

    def scatter(values: np.ndarray, destination: np.ndarray) -> np.ndarray:
        col = np.empty(n_new, dtype=values.dtype)
        col[destination] = values
        return col

    customer_windows = params.customer_windows_days if "customer" in groups else ()
    terminal_windows = params.terminal_windows_days if "terminal" in groups else ()
    extra: dict[str, np.ndarray] = {}  # the optional groups' features, placed last
    if customer_windows:
        order, key = _group_keys(_groups(frames, c.customer_id), seconds, ids)
        rows, destination = _output_rows(order, n, n_new)
        amount_sorted = amount[order]
    for w in customer_windows:
        start, end = _window_bounds(key, rows, w * _SECONDS_PER_DAY, None)
        count = (end - start).astype(np.int64)
        total = _window_sums(amount_sorted, start, end)
        mean = total / np.maximum(count, 1)
        ratio = np.divide(amount_sorted[rows], mean, out=np.zeros(len(mean)), where=mean > 0)
        features[f"customer_nb_tx_{w}d"] = scatter(count, destination)
        features[f"customer_mean_amount_{w}d"] = scatter(mean, destination)
        features[f"customer_amount_ratio_{w}d"] = scatter(ratio, destination)
        if "amount_zscore" in params.extra_features:
            squares = _window_sums(amount_sorted * amount_sorted, start, end)
            std = np.sqrt(np.maximum(squares / np.maximum(count, 1) - mean * mean, 0.0))
            z = np.divide(amount_sorted[rows] - mean, std, out=np.zeros(len(std)),
                          where=std > 1e-9 * np.maximum(mean, 1.0))
            extra[f"customer_amount_zscore_{w}d"] = scatter(z, destination)
    longest = max(customer_windows, default=0) * _SECONDS_PER_DAY
    if "recency" in params.extra_features and longest:
        # the previous row in sorted order is the card's previous transaction when its key is
        # within the cap (keys of different cards are further apart than any window)
        previous = np.maximum(rows - 1, 0)
        gap = np.where(rows > 0, key[rows] - key[previous], longest)
        extra["customer_seconds_since_last_tx"] = scatter(
            np.minimum(gap, longest).astype(np.float64), destination)
    if "card_terminal" in params.extra_features and longest:
        pair = _pair_codes(_groups(frames, c.customer_id), _groups(frames, c.terminal_id))
        pair_order, pair_key = _group_keys(pair, seconds, ids)
        pair_rows, pair_destination = _output_rows(pair_order, n, n_new)
        start, end = _window_bounds(pair_key, pair_rows, longest, None)
        extra[f"customer_terminal_nb_tx_{longest // _SECONDS_PER_DAY}d"] = scatter(
            (end - start - 1).astype(np.int64), pair_destination)

    if terminal_windows:
        order, key = _group_keys(_groups(frames, c.terminal_id), seconds, ids)
        rows, destination = _output_rows(order, n, n_new)
        label_sorted = label[order]
    delay = params.label_delay_days * _SECONDS_PER_DAY
    for w in terminal_windows:
        start, end = _window_bounds(key, rows, delay + w * _SECONDS_PER_DAY, delay)
        count = (end - start).astype(np.int64)
        frauds = _window_sums(label_sorted, start, end)
        risk = np.divide(frauds, count, out=np.zeros(len(count)), where=count > 0)
        features[f"terminal_nb_tx_{w}d"] = scatter(count, destination)
        features[f"terminal_risk_{w}d"] = scatter(risk, destination)

    features.update({name: extra[name] for name in extra_feature_names(params) if name in extra})
    # one constructor from the key columns' arrays (dtypes kept) and the features: a column
    # selection plus a concat would cost several times the whole computation on one transaction
    index = pd.RangeIndex(n_new)
    keys = {}
    for name in (c.transaction_id, c.timestamp, c.customer_id, c.terminal_id):
        column = transactions[name]
        # an object column passed as an array would be re-inferred as strings: keep it a Series
        keys[name] = (
            pd.Series(column.to_numpy(), dtype=object, index=index, copy=False)
            if column.dtype == object
            else column.array
        )
    return pd.DataFrame({**keys, **features}, index=index)


_US_PER_S = 1_000_000


@dataclass(frozen=True)
class HistoryWindow:
    """Which history rows a batch of new transactions needs, in microseconds since the epoch.

    Customer rows with ``customer_from <= ts < customer_to`` and terminal rows with
    ``terminal_from <= ts < terminal_to``: the windows of :func:`compute_features` (terminal rows
    only once older than the label delay). The operational store answers look-ups by this window.
    """

    customer_from: int
    customer_to: int
    terminal_from: int
    terminal_to: int

    @classmethod
    def for_batch(cls, ts_us: Sequence[int], params: FeatureParams) -> HistoryWindow:
        """The window covering every transaction of a batch.

        Args:
            ts_us: The batch's timestamps (microseconds).
            params: The feature parameters of the model (window lengths, label delay).

        Returns:
            The window: wide enough for every window of :func:`compute_features`.
        """
        first_s = min(ts_us) // _US_PER_S
        last_s = max(ts_us) // _US_PER_S
        delay = params.label_delay_days * _SECONDS_PER_DAY
        customer_back = max(params.customer_windows_days, default=0) * _SECONDS_PER_DAY
        terminal_back = delay + max(params.terminal_windows_days, default=0) * _SECONDS_PER_DAY
        return cls(
            customer_from=(first_s - customer_back) * _US_PER_S,
            customer_to=(last_s + 1) * _US_PER_S,
            terminal_from=(first_s - terminal_back) * _US_PER_S,
            terminal_to=(last_s - delay + 1) * _US_PER_S,
        )
