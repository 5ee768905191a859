"""Validation of request bodies: the whole request is checked before anything is written.

Bodies are parsed with :mod:`json` only (nothing is unpickled or evaluated). ``NaN``/``Infinity``
literals, which Python's parser would accept, become a marker that the models reject by name. The
fields are checked by the pydantic models of :mod:`fraud_kedro.api.schemas` (the same models make
the OpenAPI document); their errors become one detail per bad field, named as the client wrote it
(``transactions[3].amount``), with a message saying what is expected and what came.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from flask import Request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from fraud_kedro.api.errors import ApiError
from fraud_kedro.api.schemas import (  # noqa: F401 - the limits, re-exported
    INT64_MAX,
    INT64_MIN,
    MAX_ID_LENGTH,
    MAX_YEAR,
    MIN_YEAR,
    ScoreQuery,
    request_models,
)
from fraud_kedro.contract import LABEL_FIELDS, TRANSACTION_FIELDS
from fraud_kedro.store.keys import canonical_id

__all__ = ["LABEL_FIELDS", "TRANSACTION_FIELDS", "canonical_id"]  # re-exported
MAX_DETAILS = 50
_EPOCH = datetime(1970, 1, 1)


class _NonFinite:
    """Stands for a ``NaN``/``Infinity`` literal in a body."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


class Transaction(NamedTuple):
    """A validated raw transaction.

    Attributes:
        transaction_id: The id (int64).
        ts_us: Microseconds since the epoch, UTC.
        timestamp: The timestamp as a naive UTC datetime.
        customer_id: The customer id as sent (int or str).
        terminal_id: The terminal id as sent (int or str).
        customer_key: Canonical customer id (history key, see :func:`canonical_id`).
        terminal_key: Canonical terminal id (history key).
        amount: The amount.
    """

    transaction_id: int
    ts_us: int
    timestamp: datetime
    customer_id: int | str
    terminal_id: int | str
    customer_key: int | str
    terminal_key: int | str
    amount: float


class Label(NamedTuple):
    """A validated label: the transaction id and 0/1."""

    transaction_id: int
    is_fraud: int


class _Errors:
    """Collects field errors; reports the first ``MAX_DETAILS`` but counts them all."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []
        self.count = 0

    def add(self, field: str, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_DETAILS:
            self.items.append({"field": field, "message": message})

    def raise_if_any(self, status: int = 400) -> None:
        if self.count:
            first = self.items[0]
            more = f" (and {self.count - 1} more)" if self.count > 1 else ""
            raise ApiError(
                status, f"invalid request: {first['field']}: {first['message']}{more}", self.items
            )


def _read_body(request: Request) -> bytes:
    """The body, refusing one over the size cap with 413 (werkzeug's check covers Content-Length).

    A chunked body has no Content-Length; werkzeug would silently stop reading it at the cap and
    hand over a truncated body (a misleading 400). It is read here from the server's terminated
    input instead, one byte past the cap to tell "too large" from "exactly the cap".
    """
    if request.content_length is not None:
        return request.get_data(cache=False)
    environ = request.environ
    if not environ.get("wsgi.input_terminated"):
        return b""  # a server that does not terminate chunked input: nothing is read safely
    cap = request.max_content_length
    stream = environ["wsgi.input"]
    parts, size = [], 0
    while cap is None or size <= cap:
        chunk = stream.read(65536 if cap is None else min(65536, cap + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    if cap is not None and size > cap:
        raise RequestEntityTooLarge()
    return b"".join(parts)


def parse_json_body(request: Request) -> Any:
    """The JSON body of a request, or a 4xx :class:`ApiError`.

    Args:
        request: The Flask request (its size cap gives 413 on larger bodies).

    Returns:
        The parsed JSON value.

    Raises:
        ApiError: 415 without a JSON content type, 400 on an empty or malformed body.
    """
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(
            415,
            "unsupported media type: send a JSON body with Content-Type: application/json",
            [{"field": "Content-Type", "message": f"got {mimetype or 'none'!r}"}],
        )
    raw = _read_body(request)
    if not raw.strip():
        raise ApiError(400, "empty body", [{"field": "body", "message": "a JSON object is required"}])
    try:
        return json.loads(raw, parse_constant=_NonFinite)
    except (ValueError, RecursionError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else "nesting too deep"
        raise ApiError(400, "body is not valid JSON", [{"field": "body", "message": message}]) from exc


def _kind(value: Any) -> str:
    if isinstance(value, _NonFinite):
        return value.literal
    if value is None:
        return "null"
    return {
        bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"
    }.get(type(value), type(value).__name__)




def _field_path(loc: tuple[Any, ...], batch_key: str | None) -> tuple[str, str, int]:
    """The client's name of a pydantic error location, the field's own name, and its depth."""
    if batch_key and loc and loc[0] == batch_key and len(loc) > 1 and isinstance(loc[1], int):
        if len(loc) == 2:
            return f"{batch_key}[{loc[1]}]", "", 1
        return f"{batch_key}[{loc[1]}].{loc[2]}", str(loc[2]), 2
    if not loc:
        return "body", "", 0
    return str(loc[0]), str(loc[0]), 0 if batch_key else 1


def _message(error: dict[str, Any], name: str, what: str, max_amount: float) -> str:  # noqa: PLR0911, PLR0912
    """Our wording of one pydantic error: what the field must be, and what came."""
    kind, value = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown field" + (" (labels go to POST /feedback)" if name == "is_fraud" else "")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        noun = "a transaction object" if what == "transactions" else "an object"
        return f"must be {noun}, got {_kind(value)}"
    if kind == "list_type":
        return f"must be an array of {what}, got {_kind(value)}"
    if kind == "too_short":
        return f"must hold at least one {what[:-1]}"
    if kind == "too_long":
        return f"holds {ctx.get('actual_length')} {what}; at most {ctx.get('max_length')} per request"
    if name == "transaction_id":
        if isinstance(value, int) and not isinstance(value, bool):
            return f"must be an integer id in [0, {INT64_MAX}]"
        return f"must be an integer, got {_kind(value)}"
    if name in ("customer_id", "terminal_id"):
        if isinstance(value, str):
            return f"must be a non-blank string of at most {MAX_ID_LENGTH} characters"
        return f"must be an integer or a string, got {_kind(value)}"
    if name == "amount":
        if kind == "finite_number":
            return "must be a finite number"
        if kind == "greater_than_equal":
            return "must be >= 0"
        if kind == "less_than_equal":
            return f"must be <= {max_amount:g}"
        return f"must be a number, got {_kind(value)}"
    if name == "timestamp" and kind != "timestamp":
        return f"must be an ISO 8601 date-time string, got {_kind(value)}"
    if name == "is_fraud" and kind != "label":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        shown = repr(value) if number else _kind(value)
        return f"must be 0 or 1, got {shown}"
    return str(error["msg"])


def _validate(
    model: type[BaseModel], body: Any, batch_key: str | None, what: str, max_amount: float
) -> BaseModel:
    """``model`` validated from ``body``, or a 400 :class:`ApiError` with one detail per field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = _Errors()
        seen: set[str] = set()
        found = []
        for error in exc.errors(include_url=False):
            field, name, depth = _field_path(tuple(error["loc"]), batch_key)
            if field not in seen:  # a union reports each alternative: one detail per field
                seen.add(field)
                found.append((depth, field, _message(error, name, what, max_amount)))
        for _, field, message in sorted(found, key=lambda item: item[0]):  # the body's keys first
            errors.add(field, message)
        errors.raise_if_any()
        raise  # pragma: no cover - a ValidationError always has errors


def _not_an_object(body: Any, expected: str) -> ApiError:
    return ApiError(
        400,
        f"invalid request: body must be {expected}, got {_kind(body)}",
        [{"field": "body", "message": f"must be an object, got {_kind(body)}"}],
    )


def _transaction(item: Any) -> Transaction:
    delta = item.timestamp - _EPOCH
    ts_us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return Transaction(
        item.transaction_id,
        ts_us,
        item.timestamp,
        item.customer_id,
        item.terminal_id,
        canonical_id(item.customer_id),
        canonical_id(item.terminal_id),
        float(item.amount),
    )


def validate_score_request(
    body: Any, max_batch: int, max_amount: float
) -> tuple[list[Transaction], bool]:
    """Validate a ``POST /score`` body with the ``Transaction`` / ``ScoreBatch`` models.

    Args:
        body: The parsed JSON body: one transaction or ``{"transactions": [...]}``.
        max_batch: Largest batch.
        max_amount: Largest amount.

    Returns:
        The transactions, and whether the body was a batch.

    Raises:
        ApiError: 400 naming every bad field (also for a batch over ``max_batch``).
    """
    models = request_models(max_batch, float(max_amount))
    if isinstance(body, dict) and "transactions" in body:
        batch = _validate(models.ScoreBatch, body, "transactions", "transactions", max_amount)
        out = [_transaction(item) for item in batch.transactions]  # type: ignore[attr-defined]
        errors = _Errors()
        seen: dict[int, int] = {}
        for i, tx in enumerate(out):
            if tx.transaction_id in seen:
                errors.add(
                    f"transactions[{i}].transaction_id",
                    f"duplicates transactions[{seen[tx.transaction_id]}].transaction_id",
                )
            seen.setdefault(tx.transaction_id, i)
        errors.raise_if_any()
        return out, True
    if not isinstance(body, dict):
        raise _not_an_object(body, 'a transaction object or {"transactions": [...]}')
    return [_transaction(_validate(models.Transaction, body, None, "transactions", max_amount))], False


def validate_feedback_request(body: Any, max_batch: int) -> list[Label]:
    """Validate a ``POST /feedback`` body ``{"labels": [{"transaction_id", "is_fraud"}]}``.

    Args:
        body: The parsed JSON body.
        max_batch: Largest number of labels.

    Returns:
        The labels.

    Raises:
        ApiError: 400 naming every bad field (also over ``max_batch``).
    """
    if not isinstance(body, dict):
        raise _not_an_object(body, "a JSON object")
    request = _validate(request_models(max_batch, 0.0).FeedbackRequest, body, "labels", "labels", 0.0)
    labels: list[Label] = []
    errors = _Errors()
    seen: dict[int, int] = {}
    for i, item in enumerate(request.labels):  # type: ignore[attr-defined]
        if item.transaction_id in seen:
            errors.add(f"labels[{i}].transaction_id", f"duplicates labels[{seen[item.transaction_id]}]")
            continue
        seen[item.transaction_id] = i
        labels.append(Label(item.transaction_id, item.is_fraud))
    errors.raise_if_any()
    return labels


def validate_score_query(args: Mapping[str, str]) -> ScoreQuery:
    """The query parameters of ``POST /score`` (``explain=true|false``; others are ignored).

    Raises:
        ApiError: 400 naming the bad parameter.
    """
    return _validate(ScoreQuery, dict(args), None, "parameters", 0.0)  # type: ignore[return-value]


def utc_now() -> datetime:
    """The current time as a naive UTC datetime (the format of the logs)."""
    return datetime.now(UTC).replace(tzinfo=None)
