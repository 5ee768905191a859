"""The Dask cluster of a ``kedro run --env dask --pipeline dask`` (parameter key ``dask``) and its hook.

The cluster is the scheduler at ``DASK_SCHEDULER_ADDRESS`` when set (e.g. a dask-kubernetes
``DaskCluster``, deploy/dask/), else a ``LocalCluster`` sized to the machine: one single-threaded
worker per CPU, the memory split between them (capped by ``local_cluster.memory_limit``). The hook
starts it before a pipeline with Dask nodes (tag ``dask``, :mod:`fraud_kedro.distributed.pipelines`)
runs and closes it afterwards, also when the run fails. An env whose ``dask.enabled`` is true keeps
its tables as Dask datasets, so a pandas pipeline there stops before any node, naming the Dask one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import field
from typing import Any

from kedro.framework.hooks import hook_impl
from pydantic import StrictBool

from fraud_kedro.parameters import Count, build, parameters

logger = logging.getLogger(__name__)

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


#: the tag of every node that runs on Dask
DASK_TAG = "dask"


@parameters
class LocalClusterParams:
    """Sizing of the local cluster (``dask.local_cluster``); null = sized to the machine."""

    n_workers: Count | None = None
    threads_per_worker: Count = 1
    memory_limit: str | None = None  # per worker, e.g. "6GB"; null = the machine's memory / workers
    dashboard: StrictBool = False


@parameters
class DaskParams:
    """The ``dask`` parameters (conf/dask/parameters_dask.yml); Kedro validates them."""

    # true in an env whose catalog holds Dask datasets (conf/dask): only Dask pipelines run there
    enabled: StrictBool = False
    partition_rows: Count = 1_000_000
    local_cluster: LocalClusterParams = field(default_factory=LocalClusterParams)



def uses_dask(pipeline: Any) -> bool:
    """Whether ``pipeline`` has nodes that run on Dask."""
    return any(DASK_TAG in node.tags for node in pipeline.nodes)


def check_engine(params: DaskParams, pipeline: Any, name: str | None) -> None:
    """Stop a pandas pipeline in a Dask env (its catalog holds Dask datasets) before any node.

    Raises:
        ValueError: Naming the Dask pipeline to run instead.
    """
    if params.enabled and not uses_dask(pipeline):
        raise ValueError(
            f"this env keeps its tables as Dask datasets (dask.enabled): pipeline "
            f"{name or '__default__'!r} has no Dask nodes; run `kedro run --env <env> --pipeline "
            "dask` (or own_data_dask); the pandas pipelines run in the other envs"
        )


def local_cluster_kwargs(params: LocalClusterParams, cpus: int | None = None,
                         memory_bytes: int | None = None) -> dict[str, Any]:
    """``LocalCluster`` arguments: a worker per CPU, the memory shared out between them."""
    import psutil

    cpus = cpus or os.cpu_count() or 1
    n_workers = params.n_workers or max(1, cpus // max(1, params.threads_per_worker))
    memory = params.memory_limit
    if memory is None:
        total = memory_bytes or psutil.virtual_memory().total
        memory = f"{int(0.8 * total / n_workers) // 2**20}MiB"
    return {
        "n_workers": n_workers,
        "threads_per_worker": params.threads_per_worker,
        "memory_limit": memory,
        "processes": True,
        "dashboard_address": ":8787" if params.dashboard else None,
    }


def connect(params: DaskParams) -> tuple[Any, Any]:
    """A client on ``DASK_SCHEDULER_ADDRESS``, else on a new local cluster: ``(client, cluster)``."""
    from distributed import Client, LocalCluster

    address = os.environ.get(SCHEDULER_ENV)
    if address:
        logger.info("dask: connecting to the scheduler at %s", address)
        return Client(address), None
    import dask

    kwargs = local_cluster_kwargs(params.local_cluster)
    logger.info("dask: starting a local cluster %s", kwargs)
    # on a CPU-starved machine a busy worker can miss heartbeats for minutes: the default
    # worker-ttl (5 min) would restart every worker mid-shuffle and the run would never finish
    with dask.config.set({"distributed.scheduler.worker-ttl": "1h"}):
        cluster = LocalCluster(**kwargs)
    return Client(cluster), cluster


class DaskClusterHooks:
    """Reads the ``dask`` parameters; starts the cluster before the run and closes it after."""

    def __init__(self) -> None:
        self._client: Any = None
        self._cluster: Any = None
        self._params = DaskParams()

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Read the env's ``dask`` parameters (the defaults when the env has none)."""
        try:
            params = context.config_loader["parameters"]
        except Exception:  # noqa: BLE001 - no parameters at all: pandas
            params = {}
        self._params = build(DaskParams, params.get("dask"))

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any) -> None:
        """Check the engine; start (or connect to) the cluster for a pipeline with Dask nodes."""
        params = self._params
        check_engine(params, pipeline, run_params.get("pipeline_name"))
        if uses_dask(pipeline) and self._client is None:
            self._client, self._cluster = connect(params)
            logger.info("dask: %s", self._client)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        """Close the client and the local cluster."""
        self.close()

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any]) -> None:
        """Close the client and the local cluster when the run fails."""
        self.close()

    def close(self) -> None:
        """Close what :meth:`before_pipeline_run` opened."""
        for resource in (self._client, self._cluster):
            if resource is not None:
                try:
                    resource.close()
                except Exception as exc:  # noqa: BLE001 - closing must not hide the run's result
                    logger.warning("dask: closing %s failed: %s", resource, exc)
        self._client = self._cluster = None
