"""Time-based split with a label delay, and prequential validation folds.

A bank learns of fraud late: labels of the ``delay_days`` before the test window are not used for
training. Tuning never sees the test window: its folds slide the same train/delay/validation layout
back in time inside the training history.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pydantic import StrictBool

from fraud_kedro.parameters import NonNegativeNumber, PositiveNumber, parameters

logger = logging.getLogger(__name__)

DAY = pd.Timedelta(days=1)


@parameters
class SplitParams:
    """The ``split`` parameters (docs/contract.md); Kedro validates them (fraud_kedro.parameters)."""

    train_start: str | None = None
    train_days: PositiveNumber = 21
    delay_days: NonNegativeNumber = 7
    test_days: PositiveNumber = 7
    production_days: NonNegativeNumber = 0
    # drop test rows of cards known to be compromised; off when the data has no card id
    drop_known_compromised: StrictBool = True


def split_windows(timestamps: pd.Series, params: SplitParams) -> dict[str, str]:
    """Window boundaries (ISO dates) for the data at hand.

    With ``train_start`` null, the latest window that fits: the test window ends where the
    production period (the last ``production_days`` days, kept for monitoring) begins. Day counts
    may be fractional (a file of two days); a boundary that is not a midnight is then given as an
    ISO date-time.
    """
    first = timestamps.min().normalize()
    end = timestamps.max().normalize() + DAY
    span = (params.train_days + params.delay_days + params.test_days) * DAY
    if params.train_start is None:
        train_start = end - params.production_days * DAY - span
    else:
        train_start = pd.Timestamp(params.train_start)
    train_end = train_start + params.train_days * DAY
    test_start = train_end + params.delay_days * DAY
    test_end = test_start + params.test_days * DAY
    if train_start < first or test_end > end:
        raise ValueError(
            f"split does not fit the data ({first.date()} .. {(end - DAY).date()}): "
            f"train {train_start.date()} + {params.train_days}d, delay {params.delay_days}d, "
            f"test {params.test_days}d, production {params.production_days}d"
        )
    return {
        "data_start": str(first.date()),
        "train_start": _iso(train_start),
        "train_end": _iso(train_end),
        "test_start": _iso(test_start),
        "test_end": _iso(test_end),
        "data_end": str(end.date()),
    }


def split_info(
    windows: dict[str, str],
    delay_days: float,
    train: pd.DataFrame,
    test: pd.DataFrame,
    label: str,
    production_rows: int,
) -> dict:
    """The split's summary: its windows, the label delay, rows and frauds of each part."""
    info = {
        **windows,
        "delay_days": delay_days,
        "train_rows": len(train),
        "train_frauds": int(train[label].sum()),
        "test_rows": len(test),
        "test_frauds": int(test[label].sum()),
        "production_rows": int(production_rows),
    }
    return info


def check_split_info(info: dict) -> None:
    """Raise ValueError when the train or the test window holds no fraud (showing ``info``)."""
    if info["train_frauds"] == 0 or info["test_frauds"] == 0:
        raise ValueError(f"the split leaves no fraud in the train or test window: {info}")


def _iso(ts: pd.Timestamp) -> str:
    """``YYYY-MM-DD`` at midnight, else the ISO date-time."""
    return str(ts.date()) if ts == ts.normalize() else ts.isoformat()


def drop_known_compromised(
    test: pd.DataFrame,
    labelled_history: pd.DataFrame,
    customer: str,
    timestamp: str,
    label: str,
    delay_days: int,
) -> pd.DataFrame:
    """Drop test rows of cards already known to be compromised on that test day.

    ``labelled_history`` holds the training window onwards: a card is known once one of its frauds
    there is older than the label delay on the test day (every fraud of the training window, and
    those reported during the delay period and earlier test days).
    """
    frauds = labelled_history.loc[labelled_history[label] == 1, [customer, timestamp]]
    if frauds.empty:  # no card known (mapping onto an empty datetime index fails in pandas 3)
        return test
    first_fraud = frauds.groupby(customer)[timestamp].min()
    known_since = test[customer].map(first_fraud) + delay_days * DAY
    day = test[timestamp].dt.normalize()
    keep = known_since.isna() | (known_since > day)
    logger.info("test set: dropped %d rows of %d known-compromised cards",
                int((~keep).sum()), int(test.loc[~keep, customer].nunique()))
    return test.loc[keep]


def prequential_folds(
    timestamps: pd.Series, train_start: pd.Timestamp, params: SplitParams, n_folds: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Row positions of (train, validation) for each fold, newest first, inside the history.

    Fold k validates on the ``test_days`` ending ``(k - 1) * test_days`` before the training
    window's end and trains on the ``train_days`` ending ``delay_days`` before that validation.
    """
    train_end = train_start + params.train_days * DAY
    ts = timestamps.to_numpy()
    folds = []
    for k in range(n_folds):
        val_end = train_end - k * params.test_days * DAY
        val_start = val_end - params.test_days * DAY
        fit_end = val_start - params.delay_days * DAY
        fit_start = fit_end - params.train_days * DAY
        fit = np.flatnonzero((ts >= fit_start) & (ts < fit_end))
        val = np.flatnonzero((ts >= val_start) & (ts < val_end))
        if len(fit) == 0 or len(val) == 0:
            logger.warning("fold %d does not fit in the history; using %d folds", k, len(folds))
            break
        folds.append((fit, val))
    if not folds:
        raise ValueError("no prequential validation fold fits in the training history")
    return folds
