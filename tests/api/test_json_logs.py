"""FRAUD_LOG_FORMAT=json: one JSON object per record from the app (Flask test client) and from
gunicorn's access log (its formatter on a gunicorn record), no credentials in any of them."""

from __future__ import annotations

import io
import json
import logging

import pytest
from conftest import make_config

from fraud_kedro import service_logs
from fraud_kedro.api import create_app

API_KEY = "k-very-secret-123"
STORE_URL = "postgresql://fraud:hunter2-pw@db.internal:5432/fraud"
BODY = {"transaction_id": 9_000_001, "timestamp": "2018-05-25T10:00:00", "customer_id": 3,
        "terminal_id": 5, "amount": 42.0}  # fmt: skip


@pytest.fixture
def json_app(registry, state_db, monkeypatch: pytest.MonkeyPatch):
    """An app built with FRAUD_LOG_FORMAT=json; its root handler writes into a buffer."""
    root, mlflow_logger = logging.getLogger(), logging.getLogger("mlflow")
    before, mlflow_before = list(root.handlers), (list(mlflow_logger.handlers), mlflow_logger.propagate)
    monkeypatch.setenv("FRAUD_LOG_FORMAT", "json")
    app = create_app(make_config(registry, state_db, api_keys=API_KEY))
    ours = [h for h in root.handlers if getattr(h, "_fraud_service", False)]
    assert len(ours) == 1 and isinstance(ours[0].formatter, service_logs.JsonFormatter)
    buffer = io.StringIO()
    ours[0].setStream(buffer)
    yield app, buffer
    root.handlers[:] = before
    mlflow_logger.handlers[:], mlflow_logger.propagate = mlflow_before
    logging.captureWarnings(False)


def records(buffer: io.StringIO) -> list[dict]:
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_app_logs_json_with_the_request_and_no_credentials(json_app) -> None:
    app, buffer = json_app
    client = app.test_client()
    logger = logging.getLogger("fraud_kedro.api.test")
    with app.test_request_context("/score", method="POST", headers={"X-API-Key": API_KEY}):
        from flask import g

        g.request_id = "req-in-context"
        logger.warning("store at %s, header X-API-Key: %s", STORE_URL, API_KEY)
    response = client.post("/score", json=BODY, headers={"X-API-Key": API_KEY, "X-Request-ID": "req-42"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-42"
    try:
        raise RuntimeError(f"cannot reach {STORE_URL}")
    except RuntimeError:
        logger.exception("failed")
    out = records(buffer)
    for record in out:
        assert {"time", "level", "logger", "message"} <= set(record), record
    in_request = next(r for r in out if r["message"].startswith("store at"))
    assert in_request["request_id"] == "req-in-context"
    assert in_request["path"] == "/score" and in_request["method"] == "POST"
    assert in_request["level"] == "WARNING" and in_request["logger"] == "fraud_kedro.api.test"
    assert "postgresql://fraud:***@db.internal" in in_request["message"]
    failed = next(r for r in out if r["message"] == "failed")
    assert "RuntimeError" in failed["exception"] and "request_id" not in failed
    text = buffer.getvalue()
    assert API_KEY not in text and "hunter2-pw" not in text


def test_request_ids_are_echoed_or_made(json_app) -> None:
    client = json_app[0].test_client()
    made = client.get("/health").headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/health").headers["X-Request-ID"]
    for unsafe in ("a b c", "x" * 65, '"},{"level":"ERROR'):
        replaced = client.get("/health", headers={"X-Request-ID": unsafe}).headers["X-Request-ID"]
        assert replaced != unsafe and len(replaced) == 32


def test_gunicorn_access_records_are_json_without_headers() -> None:
    atoms = {"m": "POST", "U": "/score", "s": "200", "D": "12345", "q": "key=" + API_KEY,
             "{x-request-id}o": "req-7", "{x-api-key}i": API_KEY, "a": "curl"}  # fmt: skip
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '%(h)s "%(r)s" %(s)s', (), None)
    record.args = atoms
    out = json.loads(service_logs.JsonFormatter().format(record))
    assert out["message"] == "POST /score 200" and out["status"] == 200 and out["path"] == "/score"
    assert out["duration_ms"] == 12.345 and out["request_id"] == "req-7"
    assert API_KEY not in json.dumps(out)


def test_gunicorn_logconfig_is_valid_and_respects_the_access_log_setting() -> None:
    import logging.config

    for access_log in (None, "-"):
        config = service_logs.gunicorn_logconfig(access_log)
        formatter = logging.config.DictConfigurator(config).configure_formatter(config["formatters"]["json"])
        assert isinstance(formatter, service_logs.JsonFormatter)
    assert service_logs.gunicorn_logconfig(None)["loggers"]["gunicorn.access"]["handlers"] == []
    assert service_logs.gunicorn_logconfig("-")["loggers"]["gunicorn.access"]["handlers"] == ["access"]


def test_log_format_defaults_to_text_and_rejects_others() -> None:
    assert service_logs.log_format({}) == "text"
    assert service_logs.log_format({"FRAUD_LOG_FORMAT": " JSON "}) == "json"
    with pytest.raises(ValueError, match="FRAUD_LOG_FORMAT"):
        service_logs.log_format({"FRAUD_LOG_FORMAT": "xml"})
