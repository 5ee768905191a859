"""The Dask cluster of a ``kedro run --env dask`` (parameter key ``dask``) and its hook.

The cluster is the scheduler at ``DASK_SCHEDULER_ADDRESS`` when set (e.g. a dask-kubernetes
``DaskCluster``, deploy/dask/), else a ``LocalCluster`` sized to the machine: one single-threaded
worker per CPU, the memory split between them (capped by ``local_cluster.memory_limit``). The hook
starts it before the pipeline runs and closes it afterwards, also when the run fails.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


@dataclass(frozen=True)
class LocalClusterParams:
    """Sizing of the local cluster (``dask.local_cluster``); null = sized to the machine."""

    n_workers: int | None = None
    threads_per_worker: int = 1
    memory_limit: str | None = None  # per worker, e.g. "6GB"; null = the machine's memory / workers
    dashboard: bool = False


@dataclass(frozen=True)
class DaskParams:
    """The ``dask`` parameters (conf/dask/parameters_dask.yml)."""

    enabled: bool = False
    partition_rows: int = 1_000_000
    local_cluster: LocalClusterParams = field(default_factory=LocalClusterParams)

    @classmethod
    def from_dict(cls, params: dict[str, Any] | None) -> DaskParams:
        """Validate and build; unknown keys are errors."""
        params = dict(params or {})
        local = dict(params.pop("local_cluster", None) or {})
        for name, known, values in (("dask", cls, params), ("dask.local_cluster",
                                                             LocalClusterParams, local)):
            unknown = set(values) - set(known.__dataclass_fields__) - {"local_cluster"}
            if unknown:
                raise ValueError(f"Unknown {name} parameters: {sorted(unknown)}")
        obj = cls(local_cluster=LocalClusterParams(**local), **params)
        if obj.partition_rows <= 0:
            raise ValueError("dask.partition_rows must be positive")
        return obj


_current: dict[str, DaskParams] = {}


def current() -> DaskParams:
    """The ``dask`` parameters of the run being set up (disabled outside a dask env)."""
    return _current.get("params", DaskParams())


def enabled() -> bool:
    """Whether the run's heavy stages run on Dask."""
    return current().enabled


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
    kwargs = local_cluster_kwargs(params.local_cluster)
    logger.info("dask: starting a local cluster %s", kwargs)
    cluster = LocalCluster(**kwargs)
    return Client(cluster), cluster


class DaskClusterHooks:
    """Reads the ``dask`` parameters; starts the cluster before the run and closes it after."""

    def __init__(self) -> None:
        self._client: Any = None
        self._cluster: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Store the env's ``dask`` parameters; rebuild the pipelines when the engine changes."""
        try:
            params = context.config_loader["parameters"]
        except Exception:  # noqa: BLE001 - no parameters at all: pandas
            params = {}
        new = DaskParams.from_dict(params.get("dask"))
        changed = new.enabled != current().enabled
        _current["params"] = new
        if changed:
            from kedro.framework.project import PACKAGE_NAME, pipelines

            if PACKAGE_NAME:
                pipelines.configure(f"{PACKAGE_NAME}.pipeline_registry")

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        """Start (or connect to) the cluster."""
        if enabled() and self._client is None:
            self._client, self._cluster = connect(current())
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
