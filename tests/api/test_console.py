"""The analyst console: alert queue, one-click labels, scoring defaults, model and monitoring."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from conftest import make_config

from fraud_kedro.api import create_app


def _body(row: pd.Series) -> dict:
    return {"transaction_id": int(row.transaction_id), "timestamp": row.timestamp.isoformat(),
            "customer_id": int(row.customer_id), "terminal_id": int(row.terminal_id),
            "amount": float(row.amount)}  # fmt: skip


def _score_day(client, held_out: pd.DataFrame, n: int = 120, headers: dict | None = None) -> list[dict]:
    batch = [_body(row) for _, row in held_out.head(n).iterrows()]
    answer = client.post("/score", json={"transactions": batch}, headers=headers or {})
    assert answer.status_code == 200, answer.data
    return answer.get_json()["results"]


def _cases(html: str) -> list[tuple[int, str]]:
    found = re.findall(r'data-transaction-id="(\d+)" data-customer-id="([^"]+)"', html)
    return [(int(t), c) for t, c in found]


def test_queue_is_the_top_k_cards_by_score(client, held_out):
    results = _score_day(client, held_out)
    page = client.get("/console?k=5")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    cases = _cases(html)
    assert len(cases) == 5
    assert len({card for _, card in cases}) == 5, "one case per card"
    score = {r["transaction_id"]: r["fraud_probability"] for r in results}
    card = {int(row.transaction_id): str(int(row.customer_id)) for _, row in held_out.head(120).iterrows()}
    best: dict[str, float] = {}
    for tid, s in score.items():
        best[card[tid]] = max(best.get(card[tid], 0.0), s)
    expected = sorted(best.values(), reverse=True)[:5]
    assert [round(score[t], 6) for t, _ in cases] == [round(s, 6) for s in expected]
    assert "2018-05-25" in html and "recent history of the card" in html
    assert "feature values" in html  # not explained: the feature values stand for the reasons


def test_a_label_takes_the_case_out_of_the_queue(client, held_out):
    _score_day(client, held_out)
    first, card = _cases(client.get("/console?k=3").get_data(as_text=True))[0]
    answer = client.post("/feedback", json={"labels": [{"transaction_id": first, "is_fraud": 1}]})
    assert answer.status_code == 200
    after = _cases(client.get("/console?k=3").get_data(as_text=True))
    assert first not in [t for t, _ in after] and card not in [c for _, c in after]
    assert len(after) == 3


def test_scoring_form_defaults_lie_in_the_served_history(client, held_out):
    html = client.get("/console").get_data(as_text=True)
    stamp = re.search(r'name="timestamp" value="([^"]+)"', html).group(1)
    assert pd.Timestamp("2018-05-24") <= pd.Timestamp(stamp) < pd.Timestamp("2018-05-26")
    assert "No model in service" not in html and "fraud_detector" in html


def test_monitoring_status_and_report_link(client, tmp_path, monkeypatch):
    run = tmp_path / "monitoring" / "retrain_decision.json" / "2026-01-01T00.00.00.000Z"
    run.mkdir(parents=True)
    decision = {"retrain": True, "reasons": ["score_drift: fraud_probability above threshold"],
                "as_of": "2018-05-25", "alerts": [{"kind": "score_drift", "subject": "fraud_probability",
                "n_chunks": 2, "worst_value": 0.3, "threshold": 0.1, "retrain_trigger": True}]}  # fmt: skip
    (run / "retrain_decision.json").write_text(json.dumps(decision))
    page = tmp_path / "monitoring" / "index.html" / "2026-01-01T00.00.00.000Z"
    page.mkdir(parents=True)
    (page / "index.html").write_text("<html>the report</html>")
    monkeypatch.setenv("FRAUD_REPORTS_DIR", str(tmp_path))
    html = client.get("/console").get_data(as_text=True)
    assert "Retraining recommended" in html and "score_drift" in html
    assert 'href="/console/report"' in html
    assert client.get("/console/report").get_data(as_text=True) == "<html>the report</html>"


def test_no_monitoring_run_yet(client, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_REPORTS_DIR", str(tmp_path))
    assert "No monitoring run yet" in client.get("/console").get_data(as_text=True)
    assert client.get("/console/report").status_code == 404


@pytest.fixture
def keyed(registry, state_db):
    return create_app(make_config(registry, state_db, api_keys=("s3cret",))).test_client()


def test_console_asks_for_the_key_once(keyed, held_out):
    assert keyed.get("/console").status_code == 302
    assert keyed.get("/console/report").status_code == 302
    wrong = keyed.post("/console/login", data={"api_key": "nope"})
    assert wrong.status_code == 401 and "not a valid API key" in wrong.get_data(as_text=True)
    assert keyed.get("/console").status_code == 302
    assert keyed.post("/console/login", data={"api_key": "s3cret"}).status_code == 302
    _score_day(keyed, held_out, 20, headers={"X-API-Key": "s3cret"})
    html = keyed.get("/console").get_data(as_text=True)
    assert '<meta name="fraud-api-key" content="s3cret">' in html and _cases(html)
    keyed.get("/console/logout")
    assert keyed.get("/console").status_code == 302


def test_console_assets_are_local(client):
    html = client.get("/console").get_data(as_text=True)
    assert not re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    for asset in ("/static/console.js", "/static/console.css"):
        assert client.get(asset).status_code == 200


def test_an_explained_score_shows_its_logged_reasons_in_the_queue(client, held_out):
    batch = [_body(row) for _, row in held_out.head(40).iterrows()]
    answer = client.post("/score?explain=true", json={"transactions": batch})
    assert answer.status_code == 200, answer.data
    results = answer.get_json()["results"]
    top = max(results, key=lambda r: (r["fraud_probability"], -r["transaction_id"]))
    html = client.get("/console?k=1").get_data(as_text=True)
    assert [t for t, _ in _cases(html)] == [top["transaction_id"]]
    assert 'class="reasons"' in html and "feature values" not in html
    for reason in top["reasons"]:
        assert f"<td>{reason['feature']}</td>" in html
