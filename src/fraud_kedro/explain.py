"""Reasons for a score: per-feature contributions to the model's log-odds, in plain language.

What the contributions are of:

* **LightGBM / XGBoost** (``boosters.py``): exact TreeSHAP values of the booster's margin
  (log-odds), from the libraries' native ``pred_contrib``. Base value + contributions = margin.
* **The Platt-calibrated wrapper** (the served model): calibrated log-odds are
  ``a * margin + b``, an affine map of the inner model's log-odds, so the contributions are the
  inner model's, multiplied by ``a``, and the base value is ``a * base + b``. Base value +
  contributions = ``logit(fraud_probability)``, the served score's log-odds (exactly, except
  where the raw probability is clipped to [1e-6, 1 - 1e-6]).
* **Logistic regression**: exact, ``coef * standardised value`` (a linear model's SHAP values
  with the scaler's mean as reference, up to the intercept).
* **Other candidates** (hist_gradient_boosting, random_forest, balanced_bagging): no native
  contributions. The fallback is a *break-down* attribution: features are switched one at a time,
  in model order, from a reference row (the training medians) to the transaction's value, and
  each gets the change of log-odds its switch causes. It adds up exactly, but depends on the
  order and ignores interactions the way SHAP averages them; ``method`` says which one was used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_EPS = 1e-6


@dataclass(frozen=True)
class Contributions:
    """Per-row contributions to the log-odds.

    Attributes:
        values: ``(n_rows, n_features)``.
        base: ``(n_rows,)``, the base value; ``base + values.sum(1)`` is the explained output.
        method: ``treeshap``, ``linear`` or ``breakdown``.
        output: What they add up to (e.g. ``calibrated log-odds``).
    """

    values: np.ndarray
    base: np.ndarray
    method: str
    output: str


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _raw(estimator: Any, X: np.ndarray, reference: np.ndarray | None) -> Contributions:  # noqa: N803
    """Contributions to an uncalibrated estimator's log-odds."""
    if hasattr(estimator, "contributions"):
        full = estimator.contributions(X)
        return Contributions(full[:, :-1], full[:, -1], "treeshap", "log-odds")
    steps = getattr(estimator, "named_steps", None)
    if steps and "scale" in steps and hasattr(steps.get("model"), "coef_"):
        scaler, linear = steps["scale"], steps["model"]
        z = scaler.transform(X)
        values = z * linear.coef_[0]
        return Contributions(values, np.full(len(X), float(linear.intercept_[0])), "linear",
                             "log-odds")
    return _breakdown(estimator, X, reference)


def _breakdown(estimator: Any, X: np.ndarray, reference: np.ndarray | None) -> Contributions:  # noqa: N803
    """Break-down attribution from ``reference`` (zeros when None), one batch call per row."""
    n, f = X.shape
    ref = np.zeros(f) if reference is None else np.asarray(reference, dtype=np.float64)
    # path[i, j] = the row with the first j features switched to x
    steps = np.tril(np.ones((f + 1, f)), k=-1).astype(bool)  # row j: features < j switched
    paths = np.where(steps[None, :, :], X[:, None, :], ref[None, None, :]).reshape(-1, f)
    logodds = _logit(estimator.predict_proba(paths)[:, 1]).reshape(n, f + 1)
    return Contributions(np.diff(logodds, axis=1), logodds[:, 0], "breakdown", "log-odds")


def contributions(model: Any, X: np.ndarray) -> Contributions:  # noqa: N803
    """Contributions of each feature to the log-odds the model outputs for each row of ``X``.

    Args:
        model: A fitted candidate, or the Platt-calibrated wrapper of one.
        X: Feature matrix in the model's feature order.

    Returns:
        The contributions; for the calibrated wrapper they add up to the calibrated log-odds.
    """
    X = np.asarray(X, dtype=np.float64)  # noqa: N806
    if hasattr(model, "platt_coefficients") and hasattr(model, "estimator_"):
        inner = _raw(model.estimator_, X, getattr(model, "reference_", None))
        a, b = model.platt_coefficients()
        return Contributions(a * inner.values, a * inner.base + b, inner.method,
                             "calibrated log-odds")
    return _raw(model, X, getattr(model, "reference_", None))


# ---- plain language: the ONE table ---------------------------------------------------------------
# (pattern over the feature name, template). Templates get {v} (the value) and the pattern's
# named groups; a callable gets (value, groups). Features a pattern does not know keep their name.
def _flag(yes: str, no: str) -> Callable[[float, dict], str]:
    return lambda v, g: yes if v >= 0.5 else no


FEATURE_DESCRIPTIONS: list[tuple[str, str | Callable[[float, dict], str]]] = [
    (r"amount", "amount is {v:.2f}"),
    (r"hour", "at {v:02.0f}:00 (hour of the day)"),
    (r"is_weekend", _flag("on a weekend", "on a weekday")),
    (r"is_night", _flag("at night", "in the daytime")),
    (r"customer_nb_tx_(?P<w>\d+)d", "{v:.0f} transactions on this card in the last {w} days"),
    (r"customer_mean_amount_(?P<w>\d+)d", "this card's {w}-day mean amount is {v:.2f}"),
    (r"customer_amount_ratio_(?P<w>\d+)d", "amount is {v:.1f}x this card's {w}-day mean"),
    (r"customer_amount_zscore_(?P<w>\d+)d",
     "amount is {v:+.1f} standard deviations from this card's {w}-day mean"),
    (r"customer_seconds_since_last_tx",
     lambda v, g: "first transaction seen on this card" if v < 0
     else f"{v / 3600:.1f} hours since this card's previous transaction"),
    (r"customer_terminal_nb_tx_(?P<w>\d+)d",
     lambda v, g: "first visit of this card at this terminal"
     f" in {g['w']} days" if v < 1 else f"card used {v:.0f} times at this terminal in {g['w']} days"),
    (r"terminal_nb_tx_(?P<w>\d+)d",
     "{v:.0f} transactions at this terminal in a {w}-day window (ending at the label delay)"),
    (r"terminal_risk_(?P<w>\d+)d",
     "{v:.1%} of this terminal's transactions in a {w}-day window were confirmed fraud"),
    (r"terminal_nb_cards_(?P<w>\d+)d", "{v:.0f} distinct cards at this terminal in {w} days"),
    (r"terminal_mean_amount_(?P<w>\d+)d", "this terminal's {w}-day mean amount is {v:.2f}"),
]
_COMPILED = [(re.compile(rf"^{p}$"), t) for p, t in FEATURE_DESCRIPTIONS]


def describe(feature: str, value: float) -> str:
    """The plain-language reading of ``feature = value`` (e.g. "amount is 6.1x this card's
    30-day mean")."""
    for pattern, template in _COMPILED:
        match = pattern.match(feature)
        if match:
            groups = match.groupdict()
            if callable(template):
                return template(float(value), groups)
            return template.format(v=float(value), **groups)
    return f"{feature} = {value:g}"


def reasons(
    model: Any,
    features: Sequence[str],
    X: np.ndarray,  # noqa: N803
    top_k: int = 5,
) -> list[list[dict[str, Any]]]:
    """The top ``top_k`` contributions of each row, largest absolute value first.

    Returns:
        Per row: ``[{"feature", "description", "value", "contribution"}, ...]``; contributions
        are to the served score's log-odds (positive = towards fraud).
    """
    X = np.asarray(X, dtype=np.float64)  # noqa: N806
    contrib = contributions(model, X).values
    k = min(top_k, contrib.shape[1])
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
    out = []
    for i, top in enumerate(order):
        out.append([
            {
                "feature": features[j],
                "description": describe(features[j], X[i, j]),
                "value": float(X[i, j]),
                "contribution": float(contrib[i, j]),
            }
            for j in top
        ])
    return out
