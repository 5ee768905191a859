"""JSON errors: every error answer is ``{"error": ..., "details": [...]}``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from fraud_kedro.api.scoring_errors import (
    ExplanationUnsupported,
    InvalidPredictions,
    NoModelInService,
    ScoringError,
    StoreUnavailable,
    TransactionConflict,
)

logger = logging.getLogger(__name__)

#: The status code of each domain error of the scoring service (the one place they are mapped).
STATUS: dict[type[ScoringError], int] = {
    StoreUnavailable: 503,
    NoModelInService: 503,
    InvalidPredictions: 500,
    ExplanationUnsupported: 500,
    TransactionConflict: 409,
}


class ApiError(Exception):
    """An error answered as JSON with a status code.

    Args:
        status: HTTP status code.
        error: One-line message.
        details: Items naming the fields or causes (strings or small dicts).
        headers: Extra response headers (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        error: str,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.details = details or []
        self.headers = headers or {}


def json_error(
    status: int, error: str, details: list[Any] | None = None, headers: dict[str, str] | None = None
) -> Response:
    """Build a JSON error response.

    Args:
        status: HTTP status code.
        error: One-line message.
        details: Items naming the fields or causes.
        headers: Extra headers.

    Returns:
        The response.
    """
    body = json.dumps({"error": error, "details": details or []})
    response = Response(body, status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def status_of(exc: ScoringError) -> int:
    """The HTTP status of a domain error (500 for one :data:`STATUS` does not list)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def register_error_handlers(app: Flask) -> None:
    """Answer every error, expected or not, with a JSON body."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return json_error(exc.status, exc.error, exc.details, exc.headers)

    @app.errorhandler(ScoringError)
    def _scoring_error(exc: ScoringError) -> Response:
        headers = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
        return json_error(status_of(exc), exc.error, exc.details, headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        details: list[Any] = []
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            details = [{"field": "body", "message": f"request body larger than {limit} bytes"}]
        elif status == 405:
            details = [{"field": "method", "message": exc.description}]
        response = json_error(status, exc.name, details)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        if status == 413:
            # the body was not read: the connection cannot be reused
            response.headers["Connection"] = "close"
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error: %s", exc)
        return json_error(500, "internal server error", [type(exc).__name__])
