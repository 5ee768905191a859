"""A tiny, fast simulator of card transactions (Fraud Detection Handbook style) for API tests.

The project's own simulation pipeline is the reference; this helper only needs to produce data in the
raw contract schema with some learnable fraud (large amounts, compromised terminals, compromised
cards) so that a model trained on it gives varied probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_transactions(
    n_customers: int = 300,
    n_terminals: int = 400,
    n_days: int = 60,
    start: str = "2018-04-01",
    seed: int = 0,
) -> pd.DataFrame:
    """Simulate raw transactions with labels, sorted by time.

    Args:
        n_customers: Number of cards.
        n_terminals: Number of terminals.
        n_days: Number of days.
        start: First day.
        seed: Random seed.

    Returns:
        Raw transactions: transaction_id, timestamp, customer_id, terminal_id, amount, is_fraud.
    """
    rng = np.random.default_rng(seed)
    mean_amount = rng.uniform(5, 100, n_customers)
    tx_per_day = rng.uniform(0, 4, n_customers)
    own_terminals = rng.integers(0, n_terminals, size=(n_customers, 15))
    counts = rng.poisson(np.tile(tx_per_day, n_days))
    day = np.repeat(np.repeat(np.arange(n_days), n_customers), counts)
    customer = np.repeat(np.tile(np.arange(n_customers), n_days), counts)
    n = len(day)
    seconds = np.clip(rng.normal(43_200, 20_000, n), 0, 86_399).astype(np.int64)
    terminal = own_terminals[customer, rng.integers(0, 15, n)]
    amount = np.round(np.abs(rng.normal(mean_amount[customer], mean_amount[customer] / 2)), 2)
    fraud = amount > 220
    # compromised terminals: two a day, fraudulent for the next 28 days
    for d in range(n_days):
        for t in rng.integers(0, n_terminals, 2):
            fraud |= (terminal == t) & (day >= d) & (day < d + 28)
    # compromised cards: a third of their transactions over 14 days, amounts x5
    for d in range(n_days):
        for c in rng.integers(0, n_customers, 3):
            hit = (customer == c) & (day >= d) & (day < d + 14) & (rng.random(n) < 1 / 3)
            amount = np.where(hit, amount * 5, amount)
            fraud |= hit
    ts = pd.Timestamp(start) + pd.to_timedelta(day * 86_400 + seconds, unit="s")
    df = pd.DataFrame(
        {
            "timestamp": ts,
            "customer_id": customer.astype(np.int64),
            "terminal_id": terminal.astype(np.int64),
            "amount": amount.astype(np.float64),
            "is_fraud": fraud.astype(np.int64),
        }
    )
    df = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    df.insert(0, "transaction_id", np.arange(len(df), dtype=np.int64))
    return df
