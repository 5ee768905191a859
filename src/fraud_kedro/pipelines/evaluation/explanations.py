"""Global explanations of every trained model: a beeswarm of contributions and mean |contribution|.

The contributions are those ``POST /score?explain=true`` answers with (:mod:`fraud_kedro.explain`:
exact TreeSHAP for LightGBM/XGBoost, scaled to the calibrated log-odds), on a sample of the test
window: every fraud and a random share of legitimate transactions, so the plot shows both classes.
"""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fraud_kedro.explain import contributions
from fraud_kedro.features import FeatureParams

from .params import EvaluationParams

logger = logging.getLogger(__name__)


def _sample(test_set: pd.DataFrame, label: str, n: int, seed: int) -> pd.DataFrame:
    if len(test_set) <= n:
        return test_set
    frauds = test_set[test_set[label] == 1]
    legit = test_set[test_set[label] == 0]
    legit = legit.sample(n=max(1, min(len(legit), n - len(frauds))), random_state=seed)
    return pd.concat([frauds, legit])


def beeswarm(values: np.ndarray, X: np.ndarray, names: list[str], top: int = 15,  # noqa: N803
             seed: int = 0) -> plt.Figure:
    """A SHAP-style summary plot: one row per feature (largest mean |contribution| on top), one
    dot per transaction at its contribution, coloured by the feature's value (rank within the
    sample: blue low, red high), spread vertically by the local density of dots."""
    order = np.argsort(-np.abs(values).mean(axis=0))[:top]
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(order) + 1.5))
    for row, j in enumerate(order[::-1]):
        x = values[:, j]
        counts, edges = np.histogram(x, bins=50)
        density = counts[np.clip(np.digitize(x, edges) - 1, 0, len(counts) - 1)]
        spread = 0.4 * density / max(1, density.max())
        y = row + rng.uniform(-1, 1, len(x)) * spread
        ranks = pd.Series(X[:, j]).rank(pct=True).to_numpy()
        points = ax.scatter(x, y, c=ranks, cmap="coolwarm", s=6, alpha=0.7, vmin=0, vmax=1,
                            linewidths=0)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(range(len(order)), [names[j] for j in order[::-1]])
    ax.set(xlabel="contribution to the fraud log-odds",
           title="Feature contributions on the test window (sample)")
    bar = fig.colorbar(points, ax=ax, ticks=[0, 1])
    bar.ax.set_yticklabels(["low", "high"])
    bar.set_label("feature value")
    fig.tight_layout()
    return fig


def explain_globally(
    fraud_model: Any, test_set: pd.DataFrame, feature_spec: dict, evaluation_params: EvaluationParams
) -> tuple[pd.DataFrame, plt.Figure]:
    """Mean |contribution| per feature and the beeswarm, on a sample of the test window.

    Returns:
        ``(table, figure)``: the table has ``feature``, ``mean_abs_contribution``,
        ``mean_contribution_fraud``, ``mean_contribution_legit`` and the ``method`` used.
    """
    label = FeatureParams(**feature_spec["params"]).columns.label
    features = list(feature_spec["features"])
    seed = int(evaluation_params.seed)
    sample = _sample(test_set, label, int(evaluation_params.explain_rows), seed)
    X = sample[features].to_numpy(dtype=np.float64)  # noqa: N806
    y = sample[label].to_numpy()
    c = contributions(fraud_model, X)
    table = pd.DataFrame({
        "feature": features,
        "mean_abs_contribution": np.abs(c.values).mean(axis=0),
        "mean_contribution_fraud": c.values[y == 1].mean(axis=0) if (y == 1).any() else np.nan,
        "mean_contribution_legit": c.values[y == 0].mean(axis=0) if (y == 0).any() else np.nan,
        "method": c.method,
        "output": c.output,
    }).sort_values("mean_abs_contribution", ascending=False, ignore_index=True)
    logger.info("mean |contribution| (%s, %d rows): %s", c.method, len(X),
                dict(zip(table["feature"].head(5), table["mean_abs_contribution"].head(5).round(3),
                         strict=True)))
    return table, beeswarm(c.values, X, features, seed=seed)
