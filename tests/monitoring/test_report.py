"""The monitoring run's index.html: decision, alerts and plots in one page that opens offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fraud_kedro.monitoring import report

from .conftest import external_references

PROJECT_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("error")


def test_the_detector_finds_external_resources():
    assert external_references('<script src="https://cdn.plot.ly/plotly.min.js"></script>')
    assert external_references("<link href='//fonts.example.org/x.css'>")
    assert external_references("body{background:url( https://x.org/a.png)}")
    assert not external_references('<a href="#fig-1">x</a><script>var u="https://x.org"</script>')
    assert external_references('<script>x</script><script src="http://x.org/a.js"></script>')


def test_index_without_alerts():
    import pandas as pd
    import plotly.graph_objects as go

    page = report.render_index(
        {"retrain": False, "reasons": [], "alerts": []}, pd.DataFrame(), {"x": go.Figure()}
    )
    assert "No retraining needed" in page and "No alert in this run." in page


def test_every_plot_and_the_index_are_versioned_mlflow_artifacts_embedding_plotly():
    catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog_monitoring.yml").read_text())
    entry = catalog["monitoring_report"]
    assert entry["type"] == "fraud_kedro.monitoring.datasets.VersionedMlflowArtifactDataset"
    assert entry["versioned"] is True
    assert entry["dataset"]["filepath"] == "data/08_reporting/monitoring/index.html"
    for name, entry in catalog.items():
        if entry["dataset"]["type"] if isinstance(entry.get("dataset"), dict) else False:
            if entry["dataset"]["type"] == "plotly.HTMLDataset":
                assert entry["dataset"]["save_args"]["include_plotlyjs"] is True, name
