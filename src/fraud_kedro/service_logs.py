"""Log records of the scoring service: plain text (default) or one JSON object per line.

``FRAUD_LOG_FORMAT=json`` makes the app (:func:`fraud_kedro.api.create_app`) and gunicorn
(``gunicorn.conf.py``) write every record as one JSON object: ``time`` (UTC, ISO 8601), ``level``,
``logger``, ``message``, and, inside a request, ``request_id``, ``method`` and ``path``; gunicorn's
access records (``FRAUD_ACCESS_LOG``) add ``status`` and ``duration_ms``. The request id is the
caller's ``X-Request-ID`` (up to 64 of ``A-Z a-z 0-9 . _ : -``) or a new one, and is echoed in the
response's ``X-Request-ID``.

Credentials never reach a record: messages and tracebacks go through :func:`redact` (the password
of a store URL, an ``X-API-Key`` value), and access records are built from chosen fields only (never
the request headers). This module imports no Flask and no pandas at import time (gunicorn's master
loads it from ``gunicorn.conf.py``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_API_KEY = re.compile(r"(x-api-key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+", re.IGNORECASE)
_CONTEXT = ("request_id", "method", "path")


def log_format(env: Mapping[str, str] | None = None) -> str:
    """``FRAUD_LOG_FORMAT``: ``text`` (default) or ``json``.

    Raises:
        ValueError: Any other value.
    """
    raw = ((os.environ if env is None else env).get("FRAUD_LOG_FORMAT") or "text").strip().lower()
    if raw not in LOG_FORMATS:
        raise ValueError(f"FRAUD_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {raw!r}")
    return raw


def redact(text: str) -> str:
    """``text`` with store URL passwords and ``X-API-Key`` values replaced by ``***``."""
    from fraud_kedro.store.connect import mask_url

    return _API_KEY.sub(r"\1***", mask_url(text))


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is a safe token, else a new random one."""
    if header and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
        }
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            out.update(_access_fields(record.args))
        else:
            out["message"] = redact(record.getMessage())
            out.update({k: getattr(record, k) for k in _CONTEXT if getattr(record, k, None) is not None})
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


def _access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    """Fields of a gunicorn access record, from its atoms (never its headers but the request id)."""

    def atom(key: str) -> str | None:
        try:
            value = atoms[key]
        except KeyError:
            return None
        return None if value in (None, "-") else str(value)

    method, path, status = atom("m"), atom("U"), atom("s")
    out: dict[str, Any] = {"message": f"{method} {path} {status}", "method": method, "path": path}
    if status and status.isdigit():
        out["status"] = int(status)
    duration = atom("D")  # microseconds
    if duration and duration.isdigit():
        out["duration_ms"] = round(int(duration) / 1000, 3)
    request_id = atom("{x-request-id}o") or atom("{x-request-id}i")
    if request_id and _REQUEST_ID.match(request_id):
        out["request_id"] = request_id
    return out


class RequestContextFilter(logging.Filter):
    """Adds the Flask request's id, method and path to records logged inside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            from flask import g, has_request_context, request
        except ImportError:  # pragma: no cover - the service always has Flask
            return True
        if has_request_context():
            record.request_id = g.get("request_id")
            record.method = request.method
            record.path = request.path
        return True


def make_handler(fmt: str) -> logging.Handler:
    """A stderr handler writing ``fmt`` (``text`` or ``json``) records."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RequestContextFilter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler._fraud_service = True  # type: ignore[attr-defined]
    return handler


def gunicorn_logconfig(access_log: str | None) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict`` for JSON records: error log on stderr, access log to
    ``access_log`` (``FRAUD_ACCESS_LOG``: ``-`` for stdout, a file path), none when it is unset."""
    access: dict[str, Any] = {"level": "INFO", "handlers": ["access"], "propagate": False}
    access_handler: dict[str, Any] = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    if access_log and access_log != "-":
        access_handler = {"class": "logging.FileHandler", "filename": access_log}
    if not access_log:
        access = {"level": "WARNING", "handlers": [], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "fraud_kedro.service_logs.JsonFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "access": {**access_handler, "formatter": "json"},
        },
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": access,
        },
    }
