"""deploy/observability: the rules pass promtool and every metric they and the dashboard name exists."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "observability"
METRIC = re.compile(r"\b(fraud_(?:api|stream)_[a-z0-9_]+)")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> set[str]:
    """Sample names the service and the stream worker export."""
    from prometheus_client import REGISTRY

    from fraud_kedro.api.prometheus import get_metrics
    from fraud_kedro.stream.telemetry import get_stream_metrics

    get_metrics()
    get_stream_metrics()
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("fraud_"):
            names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


def _rule_exprs() -> list[str]:
    rules = yaml.safe_load((ROOT / "alerts.rules.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((ROOT / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(promtool).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("promtool missing under CI (scripts/install_test_tools.sh)")
        pytest.skip("promtool missing: run scripts/install_test_tools.sh")
    out = subprocess.run(
        [promtool, "check", "rules", str(ROOT / "alerts.rules.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_named_metric_is_exported() -> None:
    names = exported()
    assert "fraud_api_requests_total" in names and "fraud_stream_lag" in names
    for source, exprs in (("rules", _rule_exprs()), ("dashboard", _dashboard_exprs())):
        used = {m for e in exprs for m in METRIC.findall(e)}
        assert used, source
        assert used - names == set(), f"{source} names metrics nobody exports"


def test_rules_cover_what_must_reach_someone() -> None:
    rules = yaml.safe_load((ROOT / "alerts.rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {"FraudApiErrorRate", "FraudApiLatencyP99", "FraudScoreDistributionShift",
            "FraudModelTooOld", "FraudStreamLag"} <= alerts  # fmt: skip


def test_podmonitor_scrapes_the_service_and_the_worker() -> None:
    monitor = yaml.safe_load((ROOT / "podmonitor.yaml").read_text())
    assert monitor["kind"] == "PodMonitor"
    ports = {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
    assert ports == {"http", "metrics"}
    deployment = (ROOT.parent / "base" / "deployment.yaml").read_text()
    assert "name: http" in deployment
