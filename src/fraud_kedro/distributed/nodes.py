"""The Dask nodes of ``kedro run --env dask --pipeline dask``: each applies the pandas node's own function per
partition, so that the results equal the pandas path's (tests/distributed).

They take the pandas node's inputs (a pandas or Dask DataFrame), plus the ``dask`` parameters,
and return lazy Dask DataFrames that the partitioned Parquet datasets write, except where the next
stage works in memory: the split computes the training history and the train / test windows to
pandas (training stays on one machine), and the analysis table is computed to pandas for NannyML.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from fraud_kedro import creditcard
from fraud_kedro.distributed.cluster import DaskParams
from fraud_kedro.features import FeatureParams
from fraud_kedro.monitoring.params import MonitoringParams
from fraud_kedro.pipelines.data_processing import nodes as processing
from fraud_kedro.pipelines.evaluation.nodes import score_table
from fraud_kedro.pipelines.monitoring import nodes as monitoring
from fraud_kedro.split import SplitParams, check_split_info, drop_known_compromised, split_info, split_windows

logger = logging.getLogger(__name__)

#: a ``dask.dataframe.DataFrame``. Dask is imported inside the nodes only, so that registering the
#: Dask pipelines (every ``kedro`` command) does not import it; the annotations must still resolve
#: without it, since Kedro reads them to validate the typed parameters.
DaskFrame = Any


def _dd() -> Any:
    import dask.dataframe as dd

    return dd


def _to_dask(frame: Any, *partition_rows: int) -> Any:
    """:func:`fraud_kedro.distributed.datasets.to_dask`, imported when a node runs."""
    from fraud_kedro.distributed.datasets import to_dask

    return to_dask(frame, *partition_rows)


def _validate_part(part: pd.DataFrame, feature_params: FeatureParams, label_delay_days: float | None,
                   which: int, meta: pd.DataFrame) -> pd.DataFrame:
    if part.empty:
        return meta
    out = processing.validate_raw_transactions(part, feature_params, label_delay_days)[which]
    return out.astype(meta.dtypes.to_dict()) if which == 1 else out


def validate_raw_transactions(
    raw_transactions: pd.DataFrame | DaskFrame,
    feature_params: FeatureParams,
    label_delay_days: float | None,
    dask_params: DaskParams,
) -> tuple[DaskFrame, DaskFrame]:
    """The pandas validation per partition of the data shuffled by transaction id (so that a
    duplicated id meets its first occurrence). Valid rows are not sorted (the next stages do not
    need it); ``(valid, quarantine)`` as in the pandas node."""
    raw = _to_dask(raw_transactions, dask_params.partition_rows)
    if raw.npartitions > 1 and feature_params.schema != creditcard.CREDITCARD:
        raw = raw.shuffle(on=feature_params.columns.transaction_id)
    valid_meta = processing.validate_raw_transactions(raw._meta_nonempty, feature_params,
                                                      label_delay_days)[0]
    # the quarantine holds the raw rows as text and the reason (text in every partition)
    quarantine_meta = raw._meta.astype(str).assign(quarantine_reason=pd.Series(dtype=str))
    metas = [valid_meta.iloc[:0], quarantine_meta]
    valid, quarantine = (
        raw.map_partitions(_validate_part, feature_params, label_delay_days, which, metas[which],
                           meta=metas[which])
        for which in (0, 1)
    )
    return valid, quarantine


def build_model_input_table(transactions: DaskFrame, feature_params: FeatureParams,
                            label_delay_days: float | None,
                            dask_params: DaskParams) -> DaskFrame:
    """The model input table on Dask (:mod:`fraud_kedro.distributed.features`): the same
    ``compute_features`` per key partition; the ``creditcard`` schema's row-wise features per
    partition."""
    transactions = _to_dask(transactions, dask_params.partition_rows)
    feature_params = processing._with_label_delay(feature_params, label_delay_days)
    if feature_params.schema == creditcard.CREDITCARD:  # no history features: any partitioning
        meta = processing.build_model_input_table(transactions._meta_nonempty, feature_params)
        return transactions.map_partitions(processing.build_model_input_table, feature_params,
                                           meta=meta.iloc[:0])
    from fraud_kedro.distributed import features as dask_features

    return dask_features.model_input_table(transactions, feature_params)


def _sorted(frame: pd.DataFrame, timestamp: str, transaction_id: str) -> pd.DataFrame:
    """Rows in the pandas table's order (validation sorts by time, then id)."""
    return frame.sort_values([timestamp, transaction_id], kind="stable").reset_index(drop=True)


def split_data(
    model_input_table: DaskFrame,
    split_params: SplitParams,
    feature_params: FeatureParams,
    model_params: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, DaskFrame, dict]:
    """The time split of the pandas ``split_data`` on a Dask table.

    The training history, train and test windows are computed to pandas in the pandas order, so
    training gets exactly the pandas path's tables; the history is cut to what the prequential
    tuning folds read (``model.tuning.n_folds``): ``n_folds * test_days + delay_days +
    train_days`` before the training window's end. The production period stays on Dask.
    """
    params = split_params
    cols = feature_params.columns
    table = model_input_table
    if cols.label not in table.columns:
        raise ValueError(f"training needs labels: column '{cols.label}' is missing")
    ts = table[cols.timestamp]
    first, last = _dd().compute(ts.min(), ts.max())
    windows = split_windows(pd.Series([first, last]), params)
    day = pd.Timedelta(days=1)
    train_start, train_end = pd.Timestamp(windows["train_start"]), pd.Timestamp(windows["train_end"])
    test_start, test_end = pd.Timestamp(windows["test_start"]), pd.Timestamp(windows["test_end"])
    n_folds = int(model_params["tuning"]["n_folds"])
    history_start = train_end - (n_folds * params.test_days + params.delay_days
                                 + params.train_days) * day
    window = table[(ts >= min(history_start, train_start)) & (ts < test_end)]
    window = _sorted(window.compute(), cols.timestamp, cols.transaction_id)
    wts = window[cols.timestamp]
    history = window.loc[wts < train_end].reset_index(drop=True)
    train = window.loc[(wts >= train_start) & (wts < train_end)].reset_index(drop=True)
    test = window.loc[(wts >= test_start) & (wts < test_end)]
    if params.drop_known_compromised:
        test = drop_known_compromised(
            test, window.loc[(wts >= train_start) & (wts < test_end)],
            customer=cols.customer_id, timestamp=cols.timestamp, label=cols.label,
            delay_days=params.delay_days,
        )
    test = test.reset_index(drop=True)
    production = table[ts >= test_end]
    info = split_info(
        windows, params.delay_days, train, test, cols.label, production.shape[0].compute()
    )
    logger.info("split (dask): %s; training history %d rows from %s", info, len(history),
                history_start.date())
    check_split_info(info)
    return history, train, test, production, info


def batch_score(table: DaskFrame, fraud_model: Any, feature_spec: dict,
                decision_threshold: dict) -> DaskFrame:
    """The pandas ``score_table`` per partition (the model travels to the workers once)."""
    table = _to_dask(table)
    meta = score_table(table._meta_nonempty, fraud_model, feature_spec, decision_threshold)
    return table.map_partitions(score_table, fraud_model, feature_spec, decision_threshold,
                                meta=meta.iloc[:0])


def build_analysis_table(
    production_predictions: DaskFrame | pd.DataFrame | None,
    service_log: Any,
    feature_spec: dict,
    decision_threshold: dict,
    params: MonitoringParams,
) -> pd.DataFrame:
    """Monitoring's analysis table from partitioned batch scores: sorted by time on Dask, then
    the pandas node (label masking, decisions) on the sorted table, which NannyML reads in
    memory. ``source: service_log`` reads the service's logs as in pandas."""
    c = params.columns
    if params.source == "batch" and isinstance(production_predictions, _dd().DataFrame):
        keys = [c.timestamp] + (
            [c.transaction_id] if c.transaction_id in production_predictions.columns else []
        )
        production_predictions = (
            production_predictions.sort_values(keys).compute().reset_index(drop=True)
        )
    return monitoring.build_analysis_table(production_predictions, service_log, feature_spec,
                                           decision_threshold, params)
