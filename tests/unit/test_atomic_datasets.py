"""An interrupted save never leaves a half-written file that a later load would pick up."""

import pandas as pd
import pytest
from kedro.io import Version

from fraud_kedro.io.files import AtomicJSONDataset, AtomicParquetDataset, AtomicPickleDataset


class _KilledMidWrite:
    """Writes some bytes, then dies like a killed process would (BaseException)."""

    def to_parquet(self, handle, **kwargs):
        handle.write(b"PAR1 half a file")
        raise KeyboardInterrupt("killed mid-write")


def test_interrupted_versioned_save_keeps_previous_version(tmp_path):
    path = str(tmp_path / "table.parquet")
    AtomicParquetDataset(filepath=path, version=Version(None, None)).save(pd.DataFrame({"a": [1, 2]}))
    with pytest.raises(KeyboardInterrupt):
        AtomicParquetDataset(filepath=path, version=Version(None, None)).save(_KilledMidWrite())
    assert not list(tmp_path.rglob("*.partial"))
    loaded = AtomicParquetDataset(filepath=path, version=Version(None, None)).load()
    pd.testing.assert_frame_equal(loaded, pd.DataFrame({"a": [1, 2]}))


def test_interrupted_unversioned_save_leaves_old_file(tmp_path):
    path = tmp_path / "table.parquet"
    AtomicParquetDataset(filepath=str(path)).save(pd.DataFrame({"a": [1]}))
    with pytest.raises(KeyboardInterrupt):
        AtomicParquetDataset(filepath=str(path)).save(_KilledMidWrite())
    assert pd.read_parquet(path)["a"].tolist() == [1]


def test_pickle_and_json_round_trip(tmp_path):
    pickled = AtomicPickleDataset(filepath=str(tmp_path / "m.pkl"))
    pickled.save({"model": [1, 2]})
    assert pickled.load() == {"model": [1, 2]}
    js = AtomicJSONDataset(filepath=str(tmp_path / "j.json"))
    js.save({"threshold": 0.5})
    assert js.load() == {"threshold": 0.5}
    assert [p.name for p in tmp_path.iterdir()] != [] and not list(tmp_path.glob("*.partial"))
