"""The heavy batch stages on Dask distributed (``kedro run --env dask --pipeline dask``), same
results as pandas.

* :mod:`.features`: the one :func:`fraud_kedro.features.compute_features`, applied per key
  partition (customer features on data shuffled by card, terminal features on data shuffled by
  terminal);
* :mod:`.nodes`: the Dask nodes of validation, features, the split, batch scoring and
  monitoring's analysis table; :mod:`.pipelines` puts them in place of the pandas nodes;
* :mod:`.cluster`: the cluster (``DASK_SCHEDULER_ADDRESS``, else a local cluster) and its hook;
* :mod:`.datasets`: partitioned Parquet datasets; :mod:`.world`: the partitioned simulator writer.
"""
