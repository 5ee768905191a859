"""Tests of the NannyML wrapper: its quirks handled, its estimates and drift tables."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
from pandas.errors import Pandas4Warning

from fraud_kedro.monitoring import _nannyml, drift, estimator
from fraud_kedro.monitoring.chunking import chunk_bounds

pytestmark = pytest.mark.filterwarnings("error")


def test_import_loads_no_dotenv_and_disables_telemetry(tmp_path):
    # `python -c` makes python-dotenv search the working directory for .env
    (tmp_path / ".env").write_text("FRAUD_TEST_SECRET=leaked\n")
    code = textwrap.dedent(
        """
        import os
        os.environ.pop("NML_DISABLE_USAGE_LOGGING", None)
        from fraud_kedro.monitoring import _nannyml
        _nannyml.nannyml()
        print(os.environ.get("FRAUD_TEST_SECRET"), os.environ.get("NML_DISABLE_USAGE_LOGGING"),
              os.environ.get("PYTHON_DOTENV_DISABLED"))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NML_DISABLE_USAGE_LOGGING",)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    assert out.stdout.split() == ["None", "1", "None"]


def test_quiet_filters_only_pandas_deprecations_raised_in_nannyml():
    with _nannyml.quiet():
        warnings.warn_explicit(
            Pandas4Warning("dropna inplace"), Pandas4Warning, "x.py", 1, "nannyml.base"
        )
        with pytest.raises(Pandas4Warning):
            warnings.warn_explicit(
                Pandas4Warning("ours"), Pandas4Warning, "x.py", 1, "fraud_kedro.x"
            )
        with pytest.raises(UserWarning):
            warnings.warn_explicit(UserWarning("other"), UserWarning, "x.py", 1, "nannyml.base")


def _frames(n_ref: int = 4_000, n_ana: int = 6_000, seed: int = 0, shift: float = 0.0):
    rng = np.random.default_rng(seed)

    def make(n: int, shift: float) -> pd.DataFrame:
        x = rng.normal(size=(n, 3))
        x[:, 0] += shift
        p = 1 / (1 + np.exp(-(-4.0 + 2.0 * x[:, 0] + 1.0 * x[:, 1])))
        return pd.DataFrame(
            {
                "a": x[:, 0],
                "b": x[:, 1],
                "c": x[:, 2],
                "score": p,
                "y": (rng.random(n) < p).astype(int),
            }
        )

    return make(n_ref, 0.0), make(n_ana, shift)


def test_estimates_track_realised_performance_on_calibrated_scores():
    reference, analysis = _frames()
    result = estimator.estimate_performance(
        reference,
        analysis,
        score="score",
        label="y",
        reference_prediction=(reference["score"] > 0.3).to_numpy(),
        analysis_prediction=(analysis["score"] > 0.3).to_numpy(),
        metrics=["roc_auc", "average_precision", "f1"],
        chunk_size=1_000,
        ap_samples=100,
    )
    table = result.analysis()
    assert set(table["metric"]) == {"roc_auc", "average_precision", "f1"}
    bounds = list(zip(table["start_index"], table["end_index"], strict=True))[::3]
    assert bounds == chunk_bounds(len(analysis), 1_000)
    from sklearn.metrics import average_precision_score, roc_auc_score

    for metric, fn in (("roc_auc", roc_auc_score), ("average_precision", average_precision_score)):
        rows = table[table["metric"] == metric]
        realised = [
            fn(analysis["y"].iloc[s:e], analysis["score"].iloc[s:e])
            for s, e in zip(rows["start_index"], rows["end_index"], strict=True)
        ]
        error = np.abs(rows["estimated"].to_numpy() - np.array(realised))
        assert error.mean() < 0.06, metric
    ap = table[table["metric"] == "average_precision"]
    assert not np.allclose(ap["estimated"], ap["backend_estimate"])  # the AP correction applied
    assert (table["band_lower"] <= table["band_upper"]).all()


def test_univariate_and_multivariate_drift_alert_on_a_shift_only():
    reference, analysis = _frames(shift=0.0)
    _, shifted = _frames(shift=1.0, seed=1)
    columns = ["a", "b", "c", "score"]
    calm = drift.univariate_drift(reference, analysis, columns, 1_000, "jensen_shannon", 0.1)
    moved = drift.univariate_drift(reference, shifted, columns, 1_000, "jensen_shannon", 0.1)
    assert not calm[calm["period"] == "analysis"]["alert"].any()
    alerts = moved[(moved["period"] == "analysis") & moved["alert"]]
    assert set(alerts["column"]) == {"a", "score"}
    multi = drift.multivariate_drift(reference, shifted, ["a", "b", "c"], 1_000, 0.05)
    assert multi[multi["period"] == "analysis"]["alert"].all()
    assert list(multi.columns) == drift.DRIFT_COLUMNS


def test_data_quality_rates_missing_and_out_of_range_values():
    reference, analysis = _frames()
    broken = analysis.copy()
    broken.loc[:499, "a"] = np.nan
    broken.loc[1_000:1_099, "b"] = 1e6
    table = drift.data_quality(reference, broken, ["a", "b"], 1_000, 0.001, 0.01)
    ana = table[table["period"] == "analysis"].set_index(["column", "check", "chunk_index"])
    assert ana.loc[("a", "missing_rate", 0), "value"] == pytest.approx(0.5)
    assert ana.loc[("a", "missing_rate", 0), "alert"]
    assert ana.loc[("b", "out_of_range_rate", 1), "value"] == pytest.approx(0.1, abs=0.005)
    assert ana.loc[("b", "out_of_range_rate", 1), "alert"]
    assert not ana.loc[("a", "missing_rate", 1), "alert"]
