"""Small, deterministic synthetic prediction tables for the monitoring tests.

A logistic "true" model on two features gives calibrated scores; the reference holds ~300 frauds
(5 %), so with ``min_positives_per_chunk = 50`` a chunk is ~1,000 rows. With ``drift_from`` the
analysis changes from that row on: feature ``x1`` shifts (covariate drift) and frauds of a new kind,
invisible to the model, appear (concept drift), so realised performance drops.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

FEATURES = ["x1", "x2", "amount", "hour"]
N_REFERENCE = 6_000
N_ANALYSIS = 12_000
DRIFT_FROM = 6_000


def make_predictions(
    n: int,
    seed: int,
    start: str = "2024-01-01",
    drift_from: int | None = None,
    first_id: int = 0,
    challenger: bool = False,
) -> pd.DataFrame:
    """Scored transactions with labels: the schema of ``reference_predictions``."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    amount = rng.lognormal(3.0, 0.8, size=n)
    if drift_from is not None:
        x1 = np.where(np.arange(n) >= drift_from, x1 + 1.0, x1)
    p = 1 / (1 + np.exp(-(-5.0 + 2.0 * x1 + 1.5 * x2)))
    y = rng.random(n) < p
    if drift_from is not None:
        new_fraud = (np.arange(n) >= drift_from) & (rng.random(n) < 0.04)
        y = y | new_fraud
    timestamp = pd.Timestamp(start) + pd.to_timedelta(np.arange(n) * 2, unit="min")
    frame = pd.DataFrame(
        {
            "transaction_id": np.arange(first_id, first_id + n, dtype=np.int64),
            "timestamp": timestamp,
            "customer_id": rng.integers(0, 500, size=n),
            "terminal_id": rng.integers(0, 900, size=n),
            "x1": x1,
            "x2": x2,
            "amount": amount,
            "hour": timestamp.hour.to_numpy().astype(np.int64),
            "is_fraud": y.astype(np.int64),
            "fraud_probability": p,
            "is_fraud_predicted": p >= 0.3,
        }
    )
    if challenger:
        noisy = 1 / (1 + np.exp(-(-5.0 + 1.6 * x1 + 1.0 * x2 + rng.normal(0, 0.8, size=n))))
        frame["challenger_probability"] = noisy
    return frame


@pytest.fixture(scope="session")
def reference_predictions() -> pd.DataFrame:
    """The model's labelled test window."""
    return make_predictions(N_REFERENCE, seed=1)


@pytest.fixture(scope="session")
def production_predictions() -> pd.DataFrame:
    """Production period without drift."""
    return make_predictions(N_ANALYSIS, seed=2, start="2024-01-10", first_id=N_REFERENCE)


@pytest.fixture(scope="session")
def drifted_predictions() -> pd.DataFrame:
    """Production period with covariate and concept drift from row ``DRIFT_FROM``."""
    return make_predictions(
        N_ANALYSIS, seed=2, start="2024-01-10", first_id=N_REFERENCE, drift_from=DRIFT_FROM
    )


@pytest.fixture(scope="session")
def feature_spec() -> dict:
    """The ``feature_spec`` artifact."""
    return {"features": list(FEATURES), "params": {}}


@pytest.fixture(scope="session")
def decision_threshold() -> dict:
    """The ``decision_threshold`` artifact."""
    return {"threshold": 0.3}


@pytest.fixture
def params() -> dict:
    """Monitoring parameters for the small synthetic data, as Kedro passes them (a dict)."""
    return {
        "label_delay_days": 2,
        "chunking": {"min_positives_per_chunk": 50, "min_chunk_size": 200},
        "performance": {
            "min_acceptable": {"roc_auc": 0.75, "average_precision": 0.2},
            "ap_samples": 50,
        },
        "drift": {
            "threshold": 0.1,
            "seasonal_features": ["hour"],
            "multivariate_min_relative_increase": 0.15,
        },
    }


# an element or a style that makes the browser fetch something from another host
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|(?:@import\s+["']?(?:https?:)?//)""",
    re.IGNORECASE,
)
SCRIPT_BODY = re.compile(r"(<script\b[^>]*>).*?(</script>)", re.IGNORECASE | re.DOTALL)


def external_references(page: str) -> list[str]:
    """The places of ``page``'s markup and styles that would load a resource from the network.

    Inline script bodies are left out: plotly.js holds URLs as strings (its logo link, map tile
    servers) that a page without maps and with ``displaylogo: False`` never fetches.
    """
    markup = SCRIPT_BODY.sub(r"\1\2", page)
    return [markup[max(m.start() - 40, 0) : m.end() + 60] for m in EXTERNAL.finditer(markup)]
