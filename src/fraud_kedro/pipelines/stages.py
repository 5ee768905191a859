"""The two conventions every stage pipeline follows, written once.

* :func:`step`: a node is named after its function, ``<function>_node`` (the names kedro-viz,
  ``--from-nodes`` and the Dask replacements in :mod:`fraud_kedro.distributed.pipelines` use);
* :func:`stage`: a stage's nodes sit in a Kedro namespace of the stage's name, so kedro-viz
  collapses the stage, while dataset names stay global (the catalog and the other stages name
  them without a prefix).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kedro.pipeline import Node, Pipeline

Datasets = str | list[str] | dict[str, str] | None


def step(func: Callable, inputs: Datasets, outputs: Datasets, name: str | None = None) -> Node:
    """A node of ``func``, named ``<function>_node`` unless ``name`` says otherwise."""
    return Node(func, inputs=inputs, outputs=outputs, name=name or f"{func.__name__}_node")


def stage(name: str, steps: Iterable[Node], tags: Iterable[str] | None = None) -> Pipeline:
    """The stage pipeline ``name``: its steps in the namespace ``name``, tagged ``tags``."""
    return Pipeline(
        list(steps),
        tags=list(tags) if tags is not None else [name],
        namespace=name,
        prefix_datasets_with_namespace=False,
    )
