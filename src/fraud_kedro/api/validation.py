"""Validation of request bodies: the whole request is checked before anything is written.

Bodies are parsed with :mod:`json` only (nothing is unpickled or evaluated). ``NaN``/``Infinity``
literals, which Python's parser would accept, become a marker that the field checks reject by name.
Hand-written checks rather than a schema library: a single transaction is validated in a few
microseconds, and every error names its field (``transactions[3].amount``).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from fraud_kedro.api.errors import ApiError
from fraud_kedro.contract import LABEL_FIELDS, TRANSACTION_FIELDS
from fraud_kedro.store.keys import canonical_id

__all__ = ["LABEL_FIELDS", "TRANSACTION_FIELDS", "canonical_id"]  # re-exported
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
MAX_ID_LENGTH = 128
MIN_YEAR, MAX_YEAR = 1970, 2200
MAX_DETAILS = 50
_EPOCH = datetime(1970, 1, 1)
# RFC 3339 date-time (seconds optional, a space accepted instead of "T")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?$"
)


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


def _check_int64(value: Any, minimum: int = INT64_MIN) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer, got {_kind(value)}"
    if not minimum <= value <= INT64_MAX:
        return f"must be an integer in [{minimum}, {INT64_MAX}]"
    return None


def _kind(value: Any) -> str:
    if isinstance(value, _NonFinite):
        return value.literal
    if value is None:
        return "null"
    return {
        bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"
    }.get(type(value), type(value).__name__)


def _id_key(value: Any) -> tuple[int | str | None, str | None]:
    """Canonical key of a customer/terminal id, or an error message."""
    if isinstance(value, str):
        if not value.strip() or len(value) > MAX_ID_LENGTH:
            return None, f"must be a non-blank string of at most {MAX_ID_LENGTH} characters"
        return canonical_id(value), None
    problem = _check_int64(value)
    if problem:
        return None, f"must be an integer or a string, got {_kind(value)}"
    return value, None


def _parse_timestamp(value: Any) -> tuple[datetime | None, str | None]:
    if not isinstance(value, str):
        return None, f"must be an ISO 8601 date-time string, got {_kind(value)}"
    if not _DATETIME.match(value):
        return None, "must be an ISO 8601 date-time such as 2018-09-30T12:00:00"
    text = value.replace("t", "T").replace("z", "Z")
    if "." in text:  # Python parses at most microseconds: drop extra fraction digits
        head, _, tail = text.partition(".")
        digits = re.match(r"\d+", tail).group(0)  # type: ignore[union-attr]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tail[len(digits):]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        return None, f"is not a valid date-time ({exc})"
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 is past year 9999 in UTC
            return None, f"must be between years {MIN_YEAR} and {MAX_YEAR}"
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        return None, f"must be between years {MIN_YEAR} and {MAX_YEAR}"
    return parsed, None


def _transaction(item: Any, where: str, errors: _Errors, max_amount: float) -> Transaction | None:
    if not isinstance(item, dict):
        errors.add(where or "body", f"must be a transaction object, got {_kind(item)}")
        return None
    prefix = f"{where}." if where else ""
    before = errors.count
    for name in item:
        if name not in TRANSACTION_FIELDS:
            hint = " (labels go to POST /feedback)" if name == "is_fraud" else ""
            errors.add(f"{prefix}{name}", f"unknown field{hint}")
    for name in TRANSACTION_FIELDS:
        if name not in item:
            errors.add(f"{prefix}{name}", "field required")
    if errors.count > before:
        return None
    problem = _check_int64(item["transaction_id"], minimum=0)
    if problem:
        errors.add(f"{prefix}transaction_id", problem.replace("integer in", "integer id in"))
    timestamp, problem = _parse_timestamp(item["timestamp"])
    if problem:
        errors.add(f"{prefix}timestamp", problem)
    customer_key, problem = _id_key(item["customer_id"])
    if problem:
        errors.add(f"{prefix}customer_id", problem)
    terminal_key, problem = _id_key(item["terminal_id"])
    if problem:
        errors.add(f"{prefix}terminal_id", problem)
    amount = item["amount"]
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        errors.add(f"{prefix}amount", f"must be a number, got {_kind(amount)}")
    elif not math.isfinite(amount):
        errors.add(f"{prefix}amount", "must be a finite number")
    elif amount < 0:
        errors.add(f"{prefix}amount", "must be >= 0")
    elif amount > max_amount:
        errors.add(f"{prefix}amount", f"must be <= {max_amount:g}")
    if errors.count > before:
        return None
    assert timestamp is not None and customer_key is not None and terminal_key is not None
    delta = timestamp - _EPOCH
    ts_us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return Transaction(
        item["transaction_id"],
        ts_us,
        timestamp,
        item["customer_id"],
        item["terminal_id"],
        customer_key,
        terminal_key,
        float(amount),
    )


def _batch_items(body: Any, key: str, max_batch: int, what: str) -> list[Any]:
    """The list under ``key`` of a batch body, with the size and shape checks."""
    if not isinstance(body, dict):
        raise ApiError(
            400,
            f"invalid request: body must be a JSON object, got {_kind(body)}",
            [{"field": "body", "message": f"must be an object, got {_kind(body)}"}],
        )
    errors = _Errors()
    for name in body:
        if name != key:
            errors.add(name, "unknown field")
    if key not in body:
        errors.add(key, "field required")
    errors.raise_if_any()
    items = body[key]
    if not isinstance(items, list):
        errors.add(key, f"must be an array of {what}, got {_kind(items)}")
    elif not items:
        errors.add(key, f"must hold at least one {what[:-1]}")
    elif len(items) > max_batch:
        errors.add(key, f"holds {len(items)} {what}; at most {max_batch} per request")
    errors.raise_if_any()
    return items


def validate_score_request(
    body: Any, max_batch: int, max_amount: float
) -> tuple[list[Transaction], bool]:
    """Validate a ``POST /score`` body.

    Args:
        body: The parsed JSON body: one transaction or ``{"transactions": [...]}``.
        max_batch: Largest batch.
        max_amount: Largest amount.

    Returns:
        The transactions, and whether the body was a batch.

    Raises:
        ApiError: 400 naming every bad field (also for a batch over ``max_batch``).
    """
    if isinstance(body, dict) and "transactions" in body:
        items = _batch_items(body, "transactions", max_batch, "transactions")
        errors = _Errors()
        out = [_transaction(item, f"transactions[{i}]", errors, max_amount) for i, item in enumerate(items)]
        seen: dict[int, int] = {}
        for i, tx in enumerate(out):
            if tx is None:
                continue
            if tx.transaction_id in seen:
                errors.add(
                    f"transactions[{i}].transaction_id",
                    f"duplicates transactions[{seen[tx.transaction_id]}].transaction_id",
                )
            seen.setdefault(tx.transaction_id, i)
        errors.raise_if_any()
        return [tx for tx in out if tx is not None], True
    if not isinstance(body, dict):
        raise ApiError(
            400,
            f"invalid request: body must be a transaction object or {{\"transactions\": [...]}}, "
            f"got {_kind(body)}",
            [{"field": "body", "message": f"must be an object, got {_kind(body)}"}],
        )
    errors = _Errors()
    tx = _transaction(body, "", errors, max_amount)
    errors.raise_if_any()
    assert tx is not None
    return [tx], False


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
    items = _batch_items(body, "labels", max_batch, "labels")
    errors = _Errors()
    labels: list[Label] = []
    seen: dict[int, int] = {}
    for i, item in enumerate(items):
        where = f"labels[{i}]"
        if not isinstance(item, dict):
            errors.add(where, f"must be an object, got {_kind(item)}")
            continue
        before = errors.count
        for name in item:
            if name not in LABEL_FIELDS:
                errors.add(f"{where}.{name}", "unknown field")
        for name in LABEL_FIELDS:
            if name not in item:
                errors.add(f"{where}.{name}", "field required")
        if errors.count > before:
            continue
        problem = _check_int64(item["transaction_id"], minimum=0)
        if problem:
            errors.add(f"{where}.transaction_id", problem)
        label = item["is_fraud"]
        if isinstance(label, bool) or not isinstance(label, int | float) or label not in (0, 1):
            shown = repr(label) if isinstance(label, int | float) else _kind(label)
            errors.add(f"{where}.is_fraud", f"must be 0 or 1, got {shown}")
        if errors.count > before:
            continue
        if item["transaction_id"] in seen:
            errors.add(
                f"{where}.transaction_id", f"duplicates labels[{seen[item['transaction_id']]}]"
            )
            continue
        seen[item["transaction_id"]] = i
        labels.append(Label(item["transaction_id"], int(label)))
    errors.raise_if_any()
    return labels


def utc_now() -> datetime:
    """The current time as a naive UTC datetime (the format of the logs)."""
    return datetime.now(UTC).replace(tzinfo=None)
