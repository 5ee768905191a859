"""Settings of a test app or worker, and request bodies from DataFrame rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CHAMPION_URI = "models:/fraud_detector@champion"


def serving_config(tracking_uri: str, state_db: Path | str, /, **overrides: Any) -> dict[str, Any]:
    """Scoring settings of a test app or worker: no background threads, shadow scored inline, no
    authentication unless ``overrides`` set keys."""
    return {
        "model_uri": CHAMPION_URI,
        "tracking_uri": tracking_uri,
        "state_db": str(state_db),
        "seed_path": "",
        "model_poll_seconds": 0,
        "model_sync_seconds": 0,
        "shadow_after_response": False,
        "api_keys": (),
        **overrides,
    }


def _entity(value: Any) -> int | str:
    return int(value) if isinstance(value, int | np.integer) else str(value)


def tx_body(row: Any, transaction_id: int | None = None, shift: pd.Timedelta | None = None) -> dict:
    """A raw-contract JSON transaction of ``POST /score`` from a DataFrame row (a namedtuple or a
    Series), optionally under another id or moved in time."""
    ts = pd.Timestamp(row.timestamp) + (shift or pd.Timedelta(0))
    return {
        "transaction_id": int(row.transaction_id if transaction_id is None else transaction_id),
        "timestamp": ts.isoformat(),
        "customer_id": _entity(row.customer_id),
        "terminal_id": _entity(row.terminal_id),
        "amount": float(row.amount),
    }
