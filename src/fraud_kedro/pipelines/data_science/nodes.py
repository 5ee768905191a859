"""Nodes of the data_science pipeline: split, tune (Optuna), train, choose the threshold."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import optuna
import pandas as pd

from fraud_kedro.distributed.tuning import open_storage, sampler_seed
from fraud_kedro.features import FeatureParams
from fraud_kedro.models import DETERMINISTIC, build_estimator, calibrate, limit_threads, suggest_params
from fraud_kedro.selection import choose_candidate, fit_on_fold, single_row_ms, with_tuned_trees
from fraud_kedro.split import (
    DAY,
    SplitParams,
    check_split_info,
    drop_known_compromised,
    prequential_folds,
    split_info,
    split_windows,
)

from .params import ThresholdParams

logger = logging.getLogger(__name__)


def split_data(
    model_input_table: pd.DataFrame, split_params: SplitParams, feature_params: FeatureParams
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Time-based split: training history, training window, test window, production period.

    Args:
        model_input_table: Features and labels of every transaction.
        split_params: The ``split`` parameters.
        feature_params: The ``features`` parameters (column names).

    Returns:
        ``(training_history, train_set, test_set, production_set, split_info)``. The training
        history holds the labelled rows before the end of the training window (tuning folds live
        there); the test set excludes cards already known to be compromised.
    """
    params = split_params
    cols = feature_params.columns
    ts = model_input_table[cols.timestamp]
    if cols.label not in model_input_table.columns:
        raise ValueError(f"training needs labels: column '{cols.label}' is missing")
    windows = split_windows(ts, params)
    train_start, train_end = pd.Timestamp(windows["train_start"]), pd.Timestamp(windows["train_end"])
    test_start, test_end = pd.Timestamp(windows["test_start"]), pd.Timestamp(windows["test_end"])
    history = model_input_table.loc[ts < train_end].reset_index(drop=True)
    train = model_input_table.loc[(ts >= train_start) & (ts < train_end)].reset_index(drop=True)
    test = model_input_table.loc[(ts >= test_start) & (ts < test_end)]
    if params.drop_known_compromised:
        test = drop_known_compromised(
            test,
            model_input_table.loc[(ts >= train_start) & (ts < test_end)],
            customer=cols.customer_id,
            timestamp=cols.timestamp,
            label=cols.label,
            delay_days=params.delay_days,
        )
    test = test.reset_index(drop=True)
    production = model_input_table.loc[ts >= test_end].reset_index(drop=True)
    info = split_info(windows, params.delay_days, train, test, cols.label, len(production))
    logger.info("split: %s", info)
    check_split_info(info)
    return history, train, test, production, info


def _sample_negatives(
    y: np.ndarray, rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Positions to keep: every fraud and a ``rate`` share of the legitimate rows."""
    keep = (y == 1) | (rng.random(len(y)) < rate)
    return np.flatnonzero(keep)


def tune_models(
    training_history: pd.DataFrame,
    split_info: dict,
    feature_spec: dict,
    split_params: SplitParams,
    model_params: dict,
) -> tuple[dict, pd.DataFrame, Any, Any]:
    """Tune each candidate with Optuna on prequential folds inside the training history.

    The objective is the mean average precision over the folds; trials are pruned after each
    fold by a median pruner. The sampler is a seeded TPE, so the same data give the same study.

    Returns:
        ``(tuning_results, trials_table, history_plot, importance_plot)``: the best parameters and
        validation AP of each candidate and the selected kind; a table of every trial; and the
        Optuna optimisation history and parameter importances of the selected candidate.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    features = feature_spec["features"]
    label = FeatureParams(**feature_spec["params"]).columns.label
    timestamp = FeatureParams(**feature_spec["params"]).columns.timestamp
    tuning = model_params["tuning"]
    seed = int(model_params["seed"])
    folds = prequential_folds(
        training_history[timestamp],
        pd.Timestamp(split_info["train_start"]),
        split_params,
        int(tuning["n_folds"]),
    )
    X = training_history[features].to_numpy(dtype=np.float64)  # noqa: N806
    y = training_history[label].to_numpy()
    rng = np.random.default_rng(seed)
    fold_data = []
    for fit_rows, val_rows in folds:
        keep = _sample_negatives(y[fit_rows], tuning["negative_sample_rate"], rng)
        fold_data.append((fit_rows[keep], val_rows))

    es_rounds = tuning.get("early_stopping_rounds")
    n_seeds = int(model_params.get("selection", {}).get("n_seeds", 1))
    results: dict[str, Any] = {"candidates": {}, "n_folds": len(fold_data), "n_seeds": n_seeds,
                               "early_stopping_rounds": es_rounds}
    frames, studies = [], {}
    storage = open_storage(tuning.get("storage"))
    for kind in model_params["candidates"]:
        space = model_params["search_spaces"].get(kind, {})
        fixed = model_params["fixed_params"].get(kind, {}) or {}

        def objective(trial: optuna.Trial, kind: str = kind, space=space, fixed=fixed) -> float:
            params = {**fixed, **suggest_params(trial, space)}
            scores, trees = [], []
            for step, fold in enumerate(fold_data):
                _, score, kept = fit_on_fold(kind, params, seed, X, y, fold, es_rounds)
                scores.append(score)
                trees.append(kept)
                trial.report(float(np.mean(scores)), step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            trial.set_user_attr("trees", trees)
            return float(np.mean(scores))

        study = optuna.create_study(
            study_name=f"{tuning['study_prefix']}-{kind}",
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=sampler_seed(seed, tuning)),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
            storage=storage,
            load_if_exists=True,
        )
        started = time.perf_counter()
        n_trials = tuning["n_trials"]
        with limit_threads(model_params.get("omp_threads")):
            study.optimize(
                objective,
                n_trials=int(n_trials[kind] if isinstance(n_trials, dict) else n_trials),
                timeout=tuning.get("timeout_seconds"),
                callbacks=[_progress(kind)],
            )
        elapsed = time.perf_counter() - started
        best = study.best_trial
        best_params = with_tuned_trees(kind, {**fixed, **best.params},
                                       best.user_attrs.get("trees", []))
        results["candidates"][kind] = {
            "best_params": best_params,
            "tuning_average_precision": float(best.value),
            "n_trials": len(study.trials),
            "seconds": round(elapsed, 1),
            **_seed_spread(kind, best_params, seed, n_seeds, X, y, fold_data,
                           model_params.get("omp_threads")),
        }
        logger.info("%s: best validation AP %.4f after %d trials (%.0f s); over %d seeds "
                    "%.4f +- %.4f, %.3f ms a row", kind, best.value, len(study.trials), elapsed,
                    n_seeds, results["candidates"][kind]["validation_average_precision"],
                    results["candidates"][kind]["validation_ap_std"],
                    results["candidates"][kind]["predict_ms"])
        frames.append(study.trials_dataframe().assign(model=kind))
        studies[kind] = study
    selected, results["selection"] = choose_candidate(results["candidates"])
    results["selected"] = selected
    logger.info("selected model: %s", selected)
    trials = pd.concat(frames, ignore_index=True)
    trials = trials.drop(columns=[c for c in trials if c.startswith("datetime")])
    trials["duration"] = trials["duration"].dt.total_seconds()
    history_plot = optuna.visualization.plot_optimization_history(studies[selected])
    try:
        importance_plot = optuna.visualization.plot_param_importances(studies[selected])
    except (RuntimeError, ValueError) as exc:  # too few complete trials
        logger.warning("no parameter importances: %s", exc)
        importance_plot = history_plot
    return results, trials, history_plot, importance_plot


def _seed_spread(
    kind: str,
    params: dict,
    seed: int,
    n_seeds: int,
    X: np.ndarray,  # noqa: N803
    y: np.ndarray,
    fold_data: list,
    omp_threads: int | None,
) -> dict[str, float]:
    """Validation AP of the tuned parameters over ``n_seeds`` seeds (mean, std over seeds) and
    the single-row predict time of the last fitted model (the seed spread is the tolerance of
    the selection; the time is what serving it costs)."""
    means, model = [], None
    with limit_threads(omp_threads):
        for s in range(1 if kind in DETERMINISTIC else n_seeds):
            fold_scores = []
            for fold in fold_data:
                model, score, _ = fit_on_fold(kind, params, seed + s, X, y, fold, None)
                fold_scores.append(score)
            means.append(float(np.mean(fold_scores)))
        row = X[fold_data[-1][1][:1]]
        predict_ms = single_row_ms(model, row)
        explain_ms = single_row_ms(model, row, method="contributions", repeats=50)
    return {
        "validation_average_precision": float(np.mean(means)),
        "validation_ap_std": float(np.std(means)),
        "validation_ap_by_seed": means,
        "predict_ms": predict_ms,
        "explain_ms": explain_ms,
    }


def _progress(kind: str):
    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        logger.info("%s trial %d: %s (value %s)", kind, trial.number, trial.state.name,
                    f"{trial.value:.4f}" if trial.value is not None else "-")

    return callback


def train_candidates(
    train_set: pd.DataFrame, feature_spec: dict, tuning_results: dict, model_params: dict
) -> dict[str, Any]:
    """Fit every candidate with its best parameters on the training window (for the report)."""
    features = feature_spec["features"]
    label = FeatureParams(**feature_spec["params"]).columns.label
    X, y = train_set[features].to_numpy(dtype=np.float64), train_set[label].to_numpy()  # noqa: N806
    models = {}
    for kind, result in tuning_results["candidates"].items():
        started = time.perf_counter()
        models[kind] = build_estimator(kind, result["best_params"], int(model_params["seed"]))
        with limit_threads(model_params.get("omp_threads")):
            models[kind].fit(X, y)
        logger.info("fitted %s on %d rows in %.1f s", kind, len(y), time.perf_counter() - started)
    return models


def train_model(
    train_set: pd.DataFrame, feature_spec: dict, tuning_results: dict, model_params: dict
) -> Any:
    """Fit the selected candidate, calibrated, on the whole training window."""
    features = feature_spec["features"]
    label = FeatureParams(**feature_spec["params"]).columns.label
    kind = tuning_results["selected"]
    seed = int(model_params["seed"])
    estimator = build_estimator(kind, tuning_results["candidates"][kind]["best_params"], seed)
    calibration = model_params["calibration"]
    model = calibrate(estimator, calibration["method"], int(calibration["cv"]), seed)
    started = time.perf_counter()
    with limit_threads(model_params.get("omp_threads")):
        model.fit(train_set[features].to_numpy(dtype=np.float64), train_set[label].to_numpy())
    logger.info("trained %s (calibration %s) in %.1f s", kind, calibration["method"],
                time.perf_counter() - started)
    return model


def choose_threshold(
    fraud_model: Any, train_set: pd.DataFrame, feature_spec: dict, threshold_params: ThresholdParams
) -> dict:
    """The decision threshold, from costs a fraud team understands, on out-of-fold scores.

    Strategy ``cost`` minimises ``cost_missed_fraud * FN + cost_alert_review * alerts``; strategy
    ``alert_budget`` keeps the expected number of alerts per day within ``alerts_per_day``.
    """
    label = FeatureParams(**feature_spec["params"]).columns.label
    timestamp = FeatureParams(**feature_spec["params"]).columns.timestamp
    y = train_set[label].to_numpy()
    scores = getattr(fraud_model, "oof_proba_", None)
    if scores is None:
        scores = fraud_model.predict_proba(train_set[feature_spec["features"]].to_numpy(float))[:, 1]
    days = max(1.0, (train_set[timestamp].max() - train_set[timestamp].min()) / DAY)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_y = scores[order], y[order]
    alerts = np.arange(1, len(y) + 1)
    caught = np.cumsum(sorted_y)
    strategy = threshold_params.strategy
    if strategy == "cost":
        cost = (threshold_params.cost_missed_fraud * (caught[-1] - caught)
                + threshold_params.cost_alert_review * alerts)
        best = int(np.argmin(cost))
    elif strategy == "alert_budget":
        budget = threshold_params.alerts_per_day * days
        best = max(0, int(min(len(y), budget)) - 1)  # at least one alert, never all by wrap-around
    else:
        raise ValueError(f"threshold.strategy must be 'cost' or 'alert_budget', not {strategy!r}")
    threshold = float(sorted_scores[best])
    result = {
        "threshold": threshold,
        "strategy": strategy,
        "validation_alerts_per_day": float(np.sum(scores >= threshold) / days),
        "validation_recall": float(caught[best] / max(1, caught[-1])),
        "validation_precision": float(caught[best] / (best + 1)),
        **{k: v for k, v in asdict(threshold_params).items() if k != "strategy"},
    }
    logger.info("decision threshold %.4f (%s): %.1f alerts/day, recall %.3f on validation",
                threshold, strategy, result["validation_alerts_per_day"],
                result["validation_recall"])
    return result


def make_input_example(test_set: pd.DataFrame, feature_spec: dict, n_rows: int = 50) -> pd.DataFrame:
    """A few rows in the exact shape the inference pipeline takes (keys and features, no label)."""
    cols = FeatureParams(**feature_spec["params"]).columns
    keys = [cols.transaction_id, cols.timestamp, cols.customer_id, cols.terminal_id]
    extra = [f for f in feature_spec["features"] if f not in keys]
    return test_set[keys + extra].head(n_rows).reset_index(drop=True)
