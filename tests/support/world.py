"""The toy world of the service tests: transactions of ``tests/api/simdata.py`` (60 days from
2018-04-01) split in time into the history (training data, seed) and the days scored after it."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pandas as pd

API_TESTS = Path(__file__).resolve().parents[1] / "api"
if str(API_TESTS) not in sys.path:
    sys.path.insert(0, str(API_TESTS))

HELD_OUT_DAY = pd.Timestamp("2018-05-25")


@functools.cache
def _simulated(n_customers: int, n_terminals: int, n_days: int, seed: int) -> pd.DataFrame:
    from simdata import simulate_transactions

    return simulate_transactions(n_customers, n_terminals, n_days, seed=seed)


def transactions(
    n_customers: int = 300, n_terminals: int = 400, n_days: int = 60, seed: int = 0
) -> pd.DataFrame:
    """Simulated labelled transactions (simulated once a process; a copy each call)."""
    return _simulated(n_customers, n_terminals, n_days, seed).copy()


def before(frame: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """The rows before ``start``."""
    return frame[frame["timestamp"] < start].reset_index(drop=True)


def days_from(frame: pd.DataFrame, start: pd.Timestamp, days: int | None = None) -> pd.DataFrame:
    """The rows from ``start`` on (``days`` days of them, or all), in time order."""
    rows = frame[frame["timestamp"] >= start]
    if days is not None:
        rows = rows[rows["timestamp"] < start + pd.Timedelta(days=days)]
    return rows.sort_values(["timestamp", "transaction_id"]).reset_index(drop=True)
