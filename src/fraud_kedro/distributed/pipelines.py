"""Puts the Dask nodes (:mod:`fraud_kedro.distributed.nodes`) in place of the pandas nodes.

Nodes are matched by name (the part after any namespace) and keep their inputs, outputs, tags and
namespace; the Dask node also reads the extra parameters listed here. The inference pipeline (the
model's pandas path, exported with it) is never changed.
"""

from __future__ import annotations

from collections.abc import Callable

from kedro.pipeline import Node, Pipeline

from fraud_kedro.distributed import nodes
from fraud_kedro.distributed.cluster import DASK_TAG

#: node name -> (Dask function, extra inputs appended to the pandas node's inputs)
REPLACEMENTS: dict[str, tuple[Callable, list[str]]] = {
    "validate_raw_transactions_node": (nodes.validate_raw_transactions, ["params:dask"]),
    "build_model_input_table_node": (nodes.build_model_input_table, ["params:dask"]),
    "split_data_node": (nodes.split_data, ["params:model"]),
    "batch_score_production_node": (nodes.batch_score, []),
    "build_monitoring_analysis_table_node": (nodes.build_analysis_table, []),
}


def _replace(node: Node) -> Node:
    short = node.name.rsplit(".", 1)[-1]
    if short not in REPLACEMENTS:
        return node
    func, extra = REPLACEMENTS[short]
    return node._copy(func=func, inputs=[*node.inputs, *extra], tags={*node.tags, DASK_TAG})


def on_dask(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` with the heavy batch nodes on Dask."""
    if not any(node.name.rsplit(".", 1)[-1] in REPLACEMENTS for node in pipeline.nodes):
        return pipeline
    return Pipeline([_replace(node) for node in pipeline.nodes])
