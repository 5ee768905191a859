"""Point-in-time features on Dask: the pandas ``compute_features`` applied per key partition.

A customer feature depends only on the rows of its customer, a terminal feature only on the rows
of its terminal (:func:`fraud_kedro.features.compute_features`, argument ``groups``). Shuffling
the table by a key's hash puts each key's *whole* history in one partition, so no window reaches
across a partition boundary and every partition computes exactly what the pandas path computes
for its keys, bit for bit (window sums add only the rows inside each window). Two shuffles:

1. by customer: customer features (and the time-of-day features), carrying the raw columns along;
2. by terminal: terminal features, joined column-wise to the partition's customer features.

A key's history must fit in one partition: true for cards and ordinary terminals; a terminal with
a large share of all transactions would make its partition large (see docs/scaling.md).
"""

from __future__ import annotations

import logging

import dask.dataframe as dd
import pandas as pd

from fraud_kedro.features import FeatureParams, compute_features, feature_names

logger = logging.getLogger(__name__)


def _customer_part(part: pd.DataFrame, params: FeatureParams, carry: list[str]) -> pd.DataFrame:
    """Customer and time features of one partition (all rows of its customers), raw columns kept."""
    c = params.columns
    features = compute_features(part, params, groups=("customer",))
    raw = [name for name in (c.label, *carry) if name in part.columns]
    out = features.assign(**{name: part[name].to_numpy() for name in raw})
    out.index = part.index
    return out


def _terminal_part(
    part: pd.DataFrame, params: FeatureParams, names: list[str], extra: list[str]
) -> pd.DataFrame:
    """Terminal features of one partition (all rows of its terminals), in the pandas column order."""
    c = params.columns
    terminal = compute_features(part, params, groups=("terminal",))
    keys = [c.transaction_id, c.timestamp, c.customer_id, c.terminal_id]
    columns = {name: part[name].to_numpy() for name in keys}
    for name in names:
        source = terminal if name in terminal.columns and name.startswith("terminal_") else part
        columns[name] = source[name].to_numpy()
    for name in extra:
        columns[name] = part[name].to_numpy()
    out = pd.DataFrame(columns, index=pd.RangeIndex(len(part)))
    for name in keys:  # the key columns keep their dtypes (object ids stay object)
        out[name] = part[name].reset_index(drop=True)
    return out


def model_input_table(
    transactions: dd.DataFrame, params: FeatureParams, npartitions: int | None = None
) -> dd.DataFrame:
    """The model input table of :func:`fraud_kedro.pipelines.data_processing.nodes.build_model_input_table`
    on Dask: keys, the features of :func:`feature_names`, then the label and ``fraud_scenario``.

    Args:
        transactions: Validated transactions (any partitioning, any order).
        params: Feature parameters.
        npartitions: Partitions of the shuffles; None keeps the input's.

    Returns:
        A lazy Dask DataFrame; its rows are in no particular order (sort by ``transaction_id`` or
        time to compare with the pandas table).
    """
    c = params.columns
    n = npartitions or transactions.npartitions
    extra = [name for name in (c.label, "fraud_scenario") if name in transactions.columns]
    carry = [name for name in ("fraud_scenario",) if name in transactions.columns]
    names = feature_names(params)
    by_customer = transactions.shuffle(on=c.customer_id, npartitions=n)
    meta = _customer_part(transactions._meta, params, carry)
    customer = by_customer.map_partitions(_customer_part, params, carry, meta=meta)
    by_terminal = customer.shuffle(on=c.terminal_id, npartitions=n)
    meta = _terminal_part(customer._meta, params, names, extra)
    return by_terminal.map_partitions(_terminal_part, params, names, extra, meta=meta)
