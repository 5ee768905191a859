"""The API's request, response and error bodies as pydantic v2 models: written once.

The request models validate every body (:mod:`fraud_kedro.api.validation` turns their errors into
the ``{"error", "details"}`` answer) and, with the response models, generate the OpenAPI 3.1
document (:mod:`fraud_kedro.api.openapi`). The limits that a deployment configures (largest batch,
largest amount) are part of the schema, so the request models are built per configuration
(:func:`request_models`, cached).

Models are strict: ``"17"`` is not an integer, ``true`` is not a number; JSON has types and the API
keeps them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
MAX_ID_LENGTH = 128
MIN_YEAR, MAX_YEAR = 1970, 2200
# RFC 3339 date-time (seconds optional, a space accepted instead of "T")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?$"
)
_STRICT = ConfigDict(extra="forbid", strict=True)


def parse_timestamp(value: str) -> datetime:
    """An ISO 8601 / RFC 3339 date-time as a naive UTC datetime (naive input means UTC).

    Raises:
        PydanticCustomError: ``timestamp`` with the reason (not a date-time, out of range).
    """
    if not _DATETIME.match(value):
        raise PydanticCustomError("timestamp", "must be an ISO 8601 date-time such as 2018-09-30T12:00:00")
    text = value.replace("t", "T").replace("z", "Z")
    if "." in text:  # Python parses at most microseconds: drop extra fraction digits
        head, _, tail = text.partition(".")
        digits = re.match(r"\d+", tail).group(0)  # type: ignore[union-attr]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tail[len(digits):]}"
    years = f"must be between years {MIN_YEAR} and {MAX_YEAR}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PydanticCustomError(
            "timestamp", "is not a valid date-time ({reason})", {"reason": str(exc)}
        ) from exc
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 is past year 9999 in UTC
            raise PydanticCustomError("timestamp", years) from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise PydanticCustomError("timestamp", years)
    return parsed


def _zero_or_one(value: int | float) -> int:
    if value not in (0, 1):
        raise PydanticCustomError("label", f"must be 0 or 1, got {value!r}")
    return int(value)


def _integral(value: Any) -> Any:
    """17.0 is the integer 17 (JSON Schema 2020-12: a number with a zero fraction is an integer)."""
    if isinstance(value, float) and value.is_integer() and INT64_MIN <= value < 2.0**63:
        return int(value)
    return value


TransactionId = Annotated[
    StrictInt,
    Field(
        ge=0,
        le=INT64_MAX,
        description="unique id (17.0 counts as 17); an id already scored with other fields gives 409",
    ),
    BeforeValidator(_integral),
]
EntityId = Annotated[
    Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]
    | Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"\S")],
    Field(union_mode="left_to_right"),
    BeforeValidator(_integral),
    Field(description="an integer (17.0 counts as 17) or a string"),
]
Timestamp = Annotated[
    StrictStr,
    AfterValidator(parse_timestamp),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            # the year range as a pattern too, so that generated documents' clients stay inside it
            "pattern": r"^(19[7-9][0-9]|2[01][0-9][0-9]|2200)-",
            "description": (
                f"ISO 8601 / RFC 3339; naive means UTC; years {MIN_YEAR}-{MAX_YEAR} "
                "(others are answered 400)"
            ),
            "examples": ["2018-09-30T12:00:00"],
        }
    ),
]
FraudLabel = Annotated[
    StrictInt | StrictFloat,
    AfterValidator(_zero_or_one),
    WithJsonSchema({"type": "integer", "enum": [0, 1]}),
]


class Label(BaseModel):
    """A confirmed label."""

    model_config = _STRICT
    transaction_id: TransactionId
    is_fraud: FraudLabel


class RequestModels(NamedTuple):
    """The request models of one configuration."""

    Transaction: type[BaseModel]
    ScoreBatch: type[BaseModel]
    FeedbackRequest: type[BaseModel]


@lru_cache(maxsize=16)
def request_models(max_batch: int, max_amount: float) -> RequestModels:
    """The request models for a largest batch and a largest amount.

    Args:
        max_batch: Most transactions (or labels) per request.
        max_amount: Largest accepted amount.

    Returns:
        ``Transaction``, ``ScoreBatch`` and ``FeedbackRequest`` model classes.
    """
    amount = Annotated[float, Field(ge=0, le=max_amount, allow_inf_nan=False)]
    transaction = create_model(
        "Transaction",
        __config__=_STRICT,
        __doc__="One raw transaction, without labels (they go to POST /feedback).",
        transaction_id=(TransactionId, ...),
        timestamp=(Timestamp, ...),
        customer_id=(EntityId, Field(description="card / customer id")),
        terminal_id=(EntityId, Field(description="merchant terminal id")),
        amount=(amount, ...),
    )
    batch = create_model(
        "ScoreBatch",
        __config__=_STRICT,
        __doc__="A batch of transactions with distinct ids.",
        transactions=(list[transaction], Field(min_length=1, max_length=max_batch)),  # type: ignore[valid-type]
    )
    feedback = create_model(
        "FeedbackRequest",
        __config__=_STRICT,
        __doc__="Confirmed labels as they arrive.",
        labels=(list[Label], Field(min_length=1, max_length=max_batch)),
    )
    return RequestModels(transaction, batch, feedback)


_FLAG_VALUES = {"true": True, "1": True, "false": False, "0": False}


def _true_or_false(value: Any) -> bool:
    """A query flag: ``true``/``false`` (also ``1``/``0``, any case)."""
    if isinstance(value, str) and value.lower() in _FLAG_VALUES:
        return _FLAG_VALUES[value.lower()]
    raise PydanticCustomError("boolean", "must be true or false")


QueryFlag = Annotated[Any, AfterValidator(_true_or_false), WithJsonSchema({"type": "boolean"})]


class ScoreQuery(BaseModel):
    """Query parameters of ``POST /score`` (an unknown parameter is refused, as unknown fields are)."""

    model_config = ConfigDict(extra="forbid")
    explain: QueryFlag = Field(False, description="also answer the reasons of each score")


class ModelRef(BaseModel):
    """The model that answered."""

    name: str
    version: str


class Reason(BaseModel):
    """One feature's part in a score (``?explain=true``)."""

    feature: str
    value: Any = None
    contribution: float


class ScoreResult(BaseModel):
    """The score of one transaction."""

    transaction_id: int
    fraud_probability: Annotated[float, Field(ge=0, le=1)]
    is_fraud_predicted: bool
    reasons: list[Reason] | None = Field(None, description="with ?explain=true")


class ScoreResponse(BaseModel):
    """Scores, in request order."""

    model: ModelRef
    results: list[ScoreResult]


class FeedbackResponse(BaseModel):
    """What ``POST /feedback`` recorded."""

    received: int
    matched: int = Field(description="labels whose id is in the history")


class ErrorDetail(BaseModel):
    """One bad field."""

    field: str
    message: str


class Error(BaseModel):
    """Every 4xx/5xx answer."""

    error: str
    details: list[Any] = Field(
        description="what was wrong: for bad input, one {field, message} per bad field"
    )


class Status(BaseModel):
    """Liveness."""

    status: str


class Ready(BaseModel):
    """Readiness."""

    ready: bool
    model: ModelRef | None = None
    reasons: list[str]


class ModelInfo(BaseModel):
    """The model in service and the shadow model."""

    champion: dict[str, Any] | None = None
    shadow: dict[str, Any] | None = None
    last_error: str | None = None


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    ScoreResponse,
    FeedbackResponse,
    Error,
    Status,
    Ready,
    ModelInfo,
    Label,
)
