"""Monitoring alerts POSTed to a webhook: delivered, retried, never failing the run, URL not logged."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from fraud_kedro.monitoring import webhook

DECISION = {"retrain": True, "reasons": ["score_drift: fraud_probability above threshold 0.1"],
            "as_of": "2018-09-30", "alerts": [{"kind": "data_quality", "subject": "amount",
            "n_chunks": 1, "retrain_trigger": False}]}  # fmt: skip


@pytest.fixture
def receiver():
    """A local HTTP receiver; ``fail_first`` answers 503 that many times."""
    got: list[dict] = []
    state = {"fail_first": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if state["fail_first"] > 0:
                state["fail_first"] -= 1
                self.send_response(503)
            else:
                got.append({"body": body, "type": self.headers["Content-Type"], "path": self.path})
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/services/T000/B000/s3cr3t-token"
    yield url, got, state
    server.shutdown()
    thread.join(5)


def test_alert_is_delivered_as_slack_and_teams_text(receiver, caplog):
    url, got, _ = receiver
    caplog.set_level(logging.INFO)
    assert webhook.notify(DECISION, url) is True
    assert got[0]["type"] == "application/json" and set(got[0]["body"]) == {"text"}
    text = got[0]["body"]["text"]
    assert "RETRAINING RECOMMENDED" in text and "score_drift" in text and "data_quality" in text
    assert "s3cr3t-token" not in caplog.text and "127.0.0.1" in caplog.text


def test_failures_are_retried_with_backoff(receiver, monkeypatch):
    url, got, state = receiver
    state["fail_first"] = 2
    sleeps: list[float] = []
    monkeypatch.setattr(webhook.time, "sleep", sleeps.append)
    assert webhook.post_alert(url, "x") is True
    assert sleeps == [1.0, 2.0] and len(got) == 1


def test_an_unreachable_webhook_never_raises_and_hides_the_url(monkeypatch, caplog):
    monkeypatch.setattr(webhook.time, "sleep", lambda _: None)
    assert webhook.notify(DECISION, "http://127.0.0.1:9/hooks/secret-path") is False
    assert "secret-path" not in caplog.text and "not delivered" in caplog.text


def test_no_url_or_nothing_to_say_sends_nothing(receiver, monkeypatch):
    url, got, _ = receiver
    monkeypatch.delenv(webhook.ENV, raising=False)
    assert webhook.notify(DECISION) is False
    assert webhook.notify({"retrain": False, "alerts": []}, url) is False
    monkeypatch.setenv(webhook.ENV, url)
    webhook.AlertWebhookHooks().after_dataset_saved("retrain_decision", DECISION, None)
    webhook.AlertWebhookHooks().after_dataset_saved("monitoring_alerts", DECISION, None)
    assert len(got) == 1
