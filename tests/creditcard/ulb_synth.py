"""A small synthetic file in the public ULB credit-card layout (``Time, V1..V28, Amount, Class``).

Two days of transactions sorted by ``Time`` (seconds), fewer at night, about 1% fraud. Frauds are
shifted in a few V columns (as in the real file, where V14, V12, V17, V10 and V4 separate them),
so a model can learn them without being perfect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

V_COLUMNS = [f"V{i}" for i in range(1, 29)]
FRAUD_SHIFT = {"V14": -2.0, "V12": -1.6, "V17": -1.8, "V10": -1.2, "V4": 1.5}


def make_ulb_frame(n_rows: int = 20_000, fraud_rate: float = 0.01, seed: int = 7) -> pd.DataFrame:
    """The synthetic table, in the column order of the real file."""
    rng = np.random.default_rng(seed)
    # time of day: a day-time bump over a flat night, two days
    day = rng.integers(0, 2, n_rows)
    hours = np.where(rng.random(n_rows) < 0.8, rng.normal(14, 4, n_rows), rng.uniform(0, 24, n_rows))
    seconds = day * 86_400 + np.clip(hours, 0, 23.999) * 3_600
    time = np.sort(np.floor(seconds))
    label = (rng.random(n_rows) < fraud_rate).astype(np.int64)
    v = rng.normal(0.0, 1.0, (n_rows, len(V_COLUMNS)))
    for col, shift in FRAUD_SHIFT.items():
        j = V_COLUMNS.index(col)
        v[:, j] += label * shift * rng.uniform(0.5, 1.5, n_rows)
    amount = np.round(np.exp(rng.normal(3.0, 1.2, n_rows) + 0.6 * label), 2)
    frame = pd.DataFrame(v, columns=V_COLUMNS)
    frame.insert(0, "Time", time)
    frame["Amount"] = amount
    frame["Class"] = label
    return frame
