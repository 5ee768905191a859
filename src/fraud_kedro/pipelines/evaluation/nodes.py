"""Nodes of the evaluation pipeline."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    PrecisionRecallDisplay,
    RocCurveDisplay,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
)

from fraud_kedro.features import FeatureParams
from fraud_kedro.metrics import (
    card_precision_at_k,
    classification_metrics,
    expected_cost,
)
from fraud_kedro.pipelines.inference.nodes import predict_fraud

from .params import EvaluationParams, QualityGateParams

logger = logging.getLogger(__name__)


def score_table(
    table: pd.DataFrame, fraud_model: Any, feature_spec: dict, decision_threshold: dict
) -> pd.DataFrame:
    """``table`` with the inference pipeline's probability and decision appended (batch scoring)."""
    predictions = predict_fraud(table, fraud_model, feature_spec, decision_threshold)
    return table.assign(
        fraud_probability=predictions["fraud_probability"].to_numpy(),
        is_fraud_predicted=predictions["is_fraud_predicted"].to_numpy(),
    )


def _cols(feature_spec: dict):
    return FeatureParams(**feature_spec["params"]).columns


def compute_metrics(
    reference_predictions: pd.DataFrame,
    decision_threshold: dict,
    feature_spec: dict,
    evaluation_params: EvaluationParams,
) -> tuple[dict, dict, pd.DataFrame]:
    """Test-window metrics (contract names), the same for MLflow, and metrics per slice.

    Returns:
        ``(metrics, mlflow_metrics, slice_metrics)``.
    """
    c = _cols(feature_spec)
    y = reference_predictions[c.label].to_numpy()
    proba = reference_predictions["fraud_probability"].to_numpy()
    threshold = float(decision_threshold["threshold"])
    metrics = classification_metrics(y, proba, threshold)
    k = int(evaluation_params.card_precision_k)
    metrics[f"test_card_precision_at_{k}"] = card_precision_at_k(
        reference_predictions, k, c.customer_id, c.timestamp, c.label, "fraud_probability"
    )
    decision = proba >= threshold
    metrics["test_expected_cost"] = expected_cost(
        y, decision, decision_threshold["cost_missed_fraud"], decision_threshold["cost_alert_review"]
    )
    metrics["test_brier_score"] = float(brier_score_loss(y, proba))
    metrics["test_rows"] = float(len(y))
    metrics["test_frauds"] = float(y.sum())
    metrics["decision_threshold"] = threshold
    logger.info("test metrics: %s", {m: round(v, 4) for m, v in metrics.items()})

    slices = _slices(reference_predictions, c.amount, evaluation_params.amount_bands)
    rows = []
    for name, mask in slices.items():
        part = reference_predictions.loc[mask]
        if len(part) == 0:
            continue
        m = classification_metrics(part[c.label].to_numpy(), part["fraud_probability"].to_numpy(),
                                   threshold, prefix="")
        rows.append({"slice": name, "rows": len(part), "frauds": int(part[c.label].sum()), **m})
    slice_metrics = pd.DataFrame(rows)
    mlflow_metrics = {name: {"value": value, "step": 0} for name, value in metrics.items()
                      if np.isfinite(value)}
    return metrics, mlflow_metrics, slice_metrics


def _slices(df: pd.DataFrame, amount: str, bands: list[float]) -> dict[str, pd.Series]:
    slices: dict[str, pd.Series] = {"all": pd.Series(True, index=df.index)}
    edges = [0.0, *bands, np.inf]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        slices[f"amount_{lo:g}_{hi:g}"] = (df[amount] >= lo) & (df[amount] < hi)
    if "is_night" in df.columns:  # not in every schema (creditcard has no such feature)
        slices["night"] = df["is_night"] == 1
        slices["day"] = df["is_night"] == 0
    if "is_weekend" in df.columns:
        slices["weekend"] = df["is_weekend"] == 1
        slices["weekday"] = df["is_weekend"] == 0
    if "fraud_scenario" in df.columns:
        for scenario in sorted(df["fraud_scenario"].unique()):
            if scenario != 0:
                # the scenario's frauds against every legitimate transaction
                slices[f"scenario_{scenario}"] = df["fraud_scenario"].isin([0, scenario])
    return slices


def candidate_report(
    candidate_models: dict[str, Any],
    test_set: pd.DataFrame,
    feature_spec: dict,
    tuning_results: dict,
    model_params: dict,
    evaluation_params: EvaluationParams,
) -> pd.DataFrame:
    """Each tuned candidate on the test window, beside the baseline (reported, not selected on)."""
    c = _cols(feature_spec)
    X = test_set[feature_spec["features"]].to_numpy(dtype=np.float64)  # noqa: N806
    k = int(evaluation_params.card_precision_k)
    rows = []
    for kind, model in candidate_models.items():
        proba = model.predict_proba(X)[:, 1]
        scored = test_set.assign(score=proba)
        m = classification_metrics(test_set[c.label].to_numpy(), proba, 0.5)
        tuned = tuning_results["candidates"][kind]
        rows.append({
            "model": kind,
            "baseline": kind == model_params["baseline"],
            "selected": kind == tuning_results["selected"],
            "validation_average_precision": tuned["validation_average_precision"],
            "validation_ap_seed_std": tuned.get("validation_ap_std", float("nan")),
            "predict_ms_one_row": tuned.get("predict_ms", float("nan")),
            "explain_ms_one_row": tuned.get("explain_ms", float("nan")),
            "test_roc_auc": m["test_roc_auc"],
            "test_average_precision": m["test_average_precision"],
            f"test_card_precision_at_{k}": card_precision_at_k(
                scored, k, c.customer_id, c.timestamp, c.label, "score"),
        })
    report = pd.DataFrame(rows)
    base = report.loc[report["baseline"]]
    if len(base):  # each candidate beside the baseline
        for metric in ("test_average_precision", "test_roc_auc", f"test_card_precision_at_{k}"):
            report[f"{metric}_vs_baseline"] = report[metric] - float(base[metric].iloc[0])
    report = pd.DataFrame(rows)
    logger.info("candidates on the test window:\n%s", report.to_string(index=False))
    return report


def plot_evaluation(
    reference_predictions: pd.DataFrame, decision_threshold: dict, feature_spec: dict
) -> tuple[plt.Figure, ...]:
    """Precision-recall, ROC, calibration, score distribution and confusion matrix figures."""
    c = _cols(feature_spec)
    y = reference_predictions[c.label].to_numpy()
    proba = reference_predictions["fraud_probability"].to_numpy()
    threshold = float(decision_threshold["threshold"])
    figures = {}

    fig, ax = plt.subplots(figsize=(6, 5))
    PrecisionRecallDisplay.from_predictions(y, proba, ax=ax, name="model")
    ax.set_title("Precision-recall, test window")
    figures["precision_recall.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 5))
    RocCurveDisplay.from_predictions(y, proba, ax=ax, name="model")
    ax.set_title("ROC, test window")
    figures["roc.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 5))
    frac, mean_pred = calibration_curve(y, proba, n_bins=10, strategy="quantile")
    ax.plot(mean_pred, frac, marker="o", label="model")
    ax.plot([0, max(mean_pred.max(), 1e-3)], [0, max(mean_pred.max(), 1e-3)], "--", label="ideal")
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set(xlabel="mean predicted probability", ylabel="fraction of frauds",
           title="Calibration (quantile bins), test window")
    ax.legend()
    figures["calibration.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 5))
    bins = np.linspace(0, 1, 41)
    ax.hist(proba[y == 0], bins=bins, alpha=0.6, density=True, label="legitimate", log=True)
    ax.hist(proba[y == 1], bins=bins, alpha=0.6, density=True, label="fraud", log=True)
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="fraud probability", ylabel="density (log)", title="Scores by class")
    ax.legend()
    figures["score_distribution.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 4))
    cm = confusion_matrix(y, proba >= threshold, labels=[0, 1])
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["legit", "fraud"],
           yticklabels=["legit", "fraud"], xlabel="predicted", ylabel="actual",
           title=f"Confusion at threshold {threshold:.3f}")
    figures["confusion_matrix.png"] = fig
    for f in figures.values():
        f.tight_layout()
    return tuple(figures.values())


def plot_feature_importance(
    fraud_model: Any, test_set: pd.DataFrame, feature_spec: dict, evaluation_params: EvaluationParams
) -> tuple[pd.DataFrame, plt.Figure]:
    """Permutation importance (drop in average precision) on the test window."""
    c = _cols(feature_spec)
    features = feature_spec["features"]
    sample = test_set
    n = int(evaluation_params.permutation_rows)
    if len(sample) > n:
        frauds = sample[sample[c.label] == 1]
        legit = sample[sample[c.label] == 0].sample(n=max(n - len(frauds), 1),
                                                    random_state=int(evaluation_params.seed))
        sample = pd.concat([frauds, legit])
    result = permutation_importance(
        fraud_model,
        sample[features].to_numpy(dtype=np.float64),
        sample[c.label].to_numpy(),
        scoring=lambda est, X, y: average_precision_score(y, est.predict_proba(X)[:, 1]),
        n_repeats=int(evaluation_params.permutation_repeats),
        random_state=int(evaluation_params.seed),
    )
    table = pd.DataFrame({"feature": features, "importance_mean": result.importances_mean,
                          "importance_std": result.importances_std})
    table = table.sort_values("importance_mean", ascending=False).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh(table["feature"][::-1], table["importance_mean"][::-1],
            xerr=table["importance_std"][::-1])
    ax.set(xlabel="drop in average precision", title="Permutation importance, test window")
    fig.tight_layout()
    return table, fig


def evaluate_champion(
    champion_model: Any, test_set: pd.DataFrame, feature_spec: dict
) -> dict:
    """The current champion's metrics on this run's test window (empty when there is none)."""
    if champion_model is None:
        return {}
    c = _cols(feature_spec)
    keys = [c.transaction_id, c.timestamp, c.customer_id, c.terminal_id]
    columns = keys + [f for f in feature_spec["features"] if f not in keys]
    try:
        predictions = champion_model.predict(test_set[columns])
    except Exception as exc:  # a champion with an incompatible input schema is beaten by default
        logger.warning("the champion cannot score this test window: %s", exc)
        return {"error": str(exc)}
    proba = predictions["fraud_probability"].to_numpy()
    y = test_set[c.label].to_numpy()
    return classification_metrics(y, proba, 0.5)


def quality_gate(metrics: dict, champion_metrics: dict, gate_params: QualityGateParams) -> dict:
    """Verdict: does the new model (challenger) replace the champion?

    It must reach ``min_average_precision`` and, when a champion exists, beat the champion's
    average precision on the same test window by more than ``min_improvement`` (a tie keeps the
    champion: retraining the same model on the same data changes nothing).
    """
    ap = metrics["test_average_precision"]
    reasons = []
    promote = True
    if ap < gate_params.min_average_precision:
        promote = False
        reasons.append(f"average precision {ap:.4f} < minimum {gate_params.min_average_precision}")
    champion_ap = champion_metrics.get("test_average_precision")
    if champion_ap is None:
        reasons.append("no usable champion: the first model that passes the minimum is promoted")
    elif ap <= champion_ap + gate_params.min_improvement:
        promote = False
        reasons.append(f"average precision {ap:.4f} does not beat the champion's {champion_ap:.4f} "
                       f"by more than {gate_params.min_improvement}")
    else:
        reasons.append(f"average precision {ap:.4f} beats the champion's {champion_ap:.4f} "
                       f"by more than {gate_params.min_improvement}")
    verdict = {
        "promote": promote,
        "reasons": reasons,
        "challenger_average_precision": ap,
        "champion_average_precision": champion_ap,
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **{f"gate_{k}": v for k, v in asdict(gate_params).items()},
    }
    logger.info("quality gate: %s (%s)", "PROMOTE" if promote else "keep champion", "; ".join(reasons))
    return verdict
