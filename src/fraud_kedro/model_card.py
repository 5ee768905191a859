"""The model card: one Markdown page per trained (and registered) model version.

Written by the evaluation pipeline (``model_card`` dataset: ``data/08_reporting/model_card.md``
and the MLflow run's ``reporting/`` artifacts); the promotion hook copies it into the registered
version's description, so the registry shows each version's card.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pandas as pd

from fraud_kedro.contract import MODEL_NAME
from fraud_kedro.features import FeatureParams

LIMITATIONS = [
    "Labels arrive late (the `delay_days` before the test window are not trained on): the model "
    "has not seen the most recent fraud patterns when it goes live.",
    "Terminal risk features use only labels older than the label delay: a terminal compromised "
    "in the last days is invisible to them (scenario 2, compromised terminals, is the weak slice "
    "below).",
    "Concept drift that keeps the score distribution (e.g. a new fraud pattern scored like "
    "legitimate traffic) cannot be seen by performance estimation (NannyML CBPE assumes the "
    "calibration holds); only realised performance, once labels arrive, shows it.",
    "Trained and tested on simulated transactions unless you supplied your own data; the "
    "numbers say nothing about another portfolio.",
    "Precision, recall and F1 are at the cost-chosen threshold; accuracy is dominated by the "
    "legitimate majority (about 99% by predicting 'legitimate' for everything).",
]


def fingerprint(frame: pd.DataFrame) -> str:
    """A short content hash of a table (the data version of a window: same rows, same hash)."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _table(frame: pd.DataFrame, columns: list[str]) -> str:
    cols = [c for c in columns if c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame[cols].iterrows():
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class ModelCardInputs:
    """What a model card is written from: the run's outputs (nodes' names in brackets)."""

    split_info: dict
    """Windows and row counts (``split_data``)."""
    tuning_results: dict
    """Candidates, tuned parameters, selection decision."""
    model_params: dict
    """The ``model`` parameters (tuning budget)."""
    metrics: dict
    """Test-window metrics."""
    slice_metrics: pd.DataFrame
    """Metrics per slice."""
    decision_threshold: dict
    """Threshold and the costs behind it."""
    quality_gate_verdict: dict
    """Promotion verdict."""
    candidate_comparison: pd.DataFrame
    """Candidates on the test window."""
    feature_spec: dict
    """Features."""
    data_versions: dict[str, str]
    """Name -> content hash of the windows."""


def render_model_card(run: ModelCardInputs) -> str:
    """The card's Markdown."""
    selected = run.tuning_results["selected"]
    tuning = run.model_params.get("tuning", {})
    lines = [
        f"# Model card: {MODEL_NAME} ({selected}, Platt-calibrated)",
        "",
        "## Data",
        f"- Training window: {run.split_info.get('train_start')} to {run.split_info.get('train_end')} "
        f"({run.split_info.get('train_rows')} transactions, {run.split_info.get('train_frauds')} frauds)",
        f"- Label delay (not trained on): {run.split_info.get('delay_days')} days",
        f"- Test window: {run.split_info.get('test_start')} to {run.split_info.get('test_end')} "
        f"({run.split_info.get('test_rows')} transactions, {run.split_info.get('test_frauds')} frauds; "
        "cards known compromised before it removed)",
        "- Data versions (content hashes): "
        + ", ".join(f"{k} `{v}`" for k, v in sorted(run.data_versions.items())),
        f"- Features ({len(run.feature_spec['features'])}): "
        + ", ".join(f"`{f}`" for f in run.feature_spec["features"]),
        "",
        "## Candidates and tuning budget",
        f"- Candidates: {', '.join(run.tuning_results['candidates'])}; baseline "
        f"{run.model_params.get('baseline')}",
        f"- Optuna TPE, {tuning.get('n_folds')} prequential folds, trials {tuning.get('n_trials')}, "
        f"early stopping {tuning.get('early_stopping_rounds')} rounds, "
        f"{run.tuning_results.get('n_seeds', 1)} seeds for the spread",
        f"- Selection: {run.tuning_results.get('selection', {}).get('reason', selected)}",
        f"- Tuned parameters of {selected}: `{run.tuning_results['candidates'][selected]['best_params']}`",
        "",
        _table(run.candidate_comparison, [
            "model", "validation_average_precision", "validation_ap_seed_std",
            "predict_ms_one_row", "explain_ms_one_row", "test_average_precision", "test_roc_auc",
            "test_card_precision_at_100"]),
        "",
        "## Test-window metrics",
        _table(pd.DataFrame([{k: v for k, v in run.metrics.items()
                              if k.startswith("test_") and isinstance(v, float)}]).T
               .reset_index().set_axis(["metric", "value"], axis=1), ["metric", "value"]),
        "",
        "### Per slice",
        _table(run.slice_metrics, ["slice", "rows", "frauds", "roc_auc", "average_precision",
                               "precision", "recall"]),
        "",
        "## Decision threshold",
        f"- Threshold {run.decision_threshold['threshold']:.4f}, strategy "
        f"`{run.decision_threshold['strategy']}`: cost of a missed fraud "
        f"{run.decision_threshold.get('cost_missed_fraud')}, cost of reviewing an alert "
        f"{run.decision_threshold.get('cost_alert_review')}, alert budget "
        f"{run.decision_threshold.get('alerts_per_day')} a day",
        f"- On out-of-fold training scores: {run.decision_threshold.get('validation_alerts_per_day', 0):.1f} "
        f"alerts a day, recall {run.decision_threshold.get('validation_recall', 0):.3f}",
        "",
        "## Known limitations",
        *[f"- {item}" for item in LIMITATIONS],
        *_weak_slices(run.slice_metrics),
        "",
        "## Promotion",
        f"- Decided by the quality gate at {run.quality_gate_verdict.get('decided_at')}: "
        f"{'PROMOTE to champion' if run.quality_gate_verdict.get('promote') else 'stays challenger'}",
        *[f"- {reason}" for reason in run.quality_gate_verdict.get("reasons", [])],
        "- The registry version, its aliases and who moved them: MLflow model registry "
        "(the promotion hook sets `challenger`/`champion` from this verdict; a person may move "
        "the alias by hand, which the registry records).",
        "",
    ]
    return "\n".join(lines)


def _weak_slices(slice_metrics: pd.DataFrame) -> list[str]:
    if "average_precision" not in slice_metrics or "slice" not in slice_metrics:
        return []
    scenarios = slice_metrics[slice_metrics["slice"].astype(str).str.startswith("scenario")]
    if scenarios.empty:
        return []
    worst = scenarios.sort_values("average_precision").iloc[0]
    return [f"- Weakest fraud scenario on the test window: {worst['slice']} (AP "
            f"{worst['average_precision']:.3f}, ROC AUC {worst.get('roc_auc', float('nan')):.3f})"]


def make_model_card(
    split_info: dict,
    tuning_results: dict,
    model_params: dict,
    metrics: dict,
    slice_metrics: pd.DataFrame,
    decision_threshold: dict,
    quality_gate_verdict: dict,
    candidate_comparison: pd.DataFrame,
    feature_spec: dict,
    train_set: pd.DataFrame,
    test_set: pd.DataFrame,
) -> str:
    """Node: the model card of this run (see :func:`render_model_card`)."""
    cols = FeatureParams(**feature_spec["params"]).columns
    keys = [cols.transaction_id, cols.timestamp, cols.customer_id, cols.terminal_id, cols.amount,
            cols.label]
    versions = {
        "train_window": fingerprint(train_set[[k for k in keys if k in train_set]]),
        "test_window": fingerprint(test_set[[k for k in keys if k in test_set]]),
    }
    run = ModelCardInputs(split_info, tuning_results, model_params, metrics, slice_metrics,
                          decision_threshold, quality_gate_verdict, candidate_comparison,
                          feature_spec, versions)
    return render_model_card(run)


def card_for_registry(card: Any, version: str) -> str:
    """The card as the registered version's description (with its version number)."""
    return f"Version {version}.\n\n{card}"
