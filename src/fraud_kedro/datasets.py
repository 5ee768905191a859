"""Old home of the project's file datasets, kept so that models registered before 0.2 still load.

A registered model pickles its inference catalog, and with it the dataset classes by module path
(``fraud_kedro.datasets.AtomicPickleDataset``...). The classes now live in
:mod:`fraud_kedro.io.files`; new code imports them from there.
"""

from fraud_kedro.io.files import (  # noqa: F401 - re-exported for unpickling
    AtomicJSONDataset,
    AtomicParquetDataset,
    AtomicPickleDataset,
    RegisteredModelDataset,
    TransactionsFileDataset,
    _AtomicFileSystem,
    _AtomicSaveMixin,
)
