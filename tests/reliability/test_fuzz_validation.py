"""Property-based tests of request validation (hypothesis).

The validation functions, on any JSON value, either return validated items or raise a 4xx
``ApiError`` whose details name fields; nothing else escapes. Valid transactions are accepted with
their values intact, and one bad field in a valid transaction is a 400 naming that field. Through the
app, any body (bytes or JSON) gets an answer below 500, and a rejected request writes nothing: no
commit to the state store (SQLite ``data_version`` of an observer connection is unchanged) and no
warning or error in the service's log.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from fraud_kedro.api.errors import ApiError
from fraud_kedro.api.validation import (
    INT64_MAX,
    MAX_DETAILS,
    canonical_id,
    parse_json_body,
    validate_feedback_request,
    validate_score_request,
)

from . import harness

MAX_BATCH = 50
MAX_AMOUNT = 1e9
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- strategies ----------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", " ", "2018-05-25T12:00:00", "2018-02-30T00:00:00", "NaN", "1e400", "17", "x" * 200]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "transaction_id",
                        "timestamp",
                        "customer_id",
                        "terminal_id",
                        "amount",
                        "transactions",
                        "labels",
                        "is_fraud",
                    ]
                ),
                st.text(max_size=12),
            ),
            inner,
            max_size=7,
        ),
    ),
    max_leaves=40,
)
entity_ids = st.one_of(
    st.integers(min_value=-(2**63), max_value=INT64_MAX),
    st.text(min_size=1, max_size=128).filter(lambda s: s.strip() != ""),
)
moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 12, 30))


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[str, datetime]:
    """An accepted timestamp text and the naive UTC moment it stands for."""
    moment = draw(moments)
    offset_minutes = draw(st.one_of(st.none(), st.integers(min_value=-14 * 60, max_value=14 * 60)))
    sep = draw(st.sampled_from(["T", " "]))
    fraction = draw(st.sampled_from(["", "micro", "nano"]))
    text = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if fraction == "micro":
        text += f".{moment.microsecond:06d}"
    elif fraction == "nano":
        text += f".{moment.microsecond:06d}789"  # digits past microseconds are dropped
    else:
        moment = moment.replace(microsecond=0)
    if offset_minutes is None:
        utc = moment
    else:
        sign = "+" if offset_minutes >= 0 else "-"
        text += f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
        utc = moment - timedelta(minutes=offset_minutes)
        assume(1970 <= utc.year <= 2200)
    return text, utc


@st.composite
def transactions(draw: st.DrawFn, transaction_id: int | None = None) -> tuple[dict, datetime]:
    text, utc = draw(timestamps())
    tx = {
        "transaction_id": draw(st.integers(0, INT64_MAX)) if transaction_id is None else transaction_id,
        "timestamp": text,
        "customer_id": draw(entity_ids),
        "terminal_id": draw(entity_ids),
        "amount": draw(st.one_of(st.integers(0, 10**9), st.floats(0, MAX_AMOUNT, allow_nan=False))),
    }
    return tx, utc


def _not_an_int64(value: float) -> bool:
    return not (value.is_integer() and -(2.0**63) <= value < 2.0**63)


BAD_VALUES = {
    "transaction_id": st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=INT64_MAX + 1),
        st.floats().filter(_not_an_int64),  # 17.0 is the integer 17 (JSON Schema)
        st.text(max_size=5),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    ),
    "timestamp": st.one_of(
        st.integers(),
        st.floats(),
        st.none(),
        st.booleans(),
        st.sampled_from(
            [
                "yesterday",
                "2018-05-25",
                "2018-13-01T00:00:00",
                "1969-12-31T23:59:59",
                "2201-01-01T00:00:00",
                "2018-05-25T25:00:00",
                "",
                "2018-05-25T12:00:00+25:00",
            ]
        ),
    ),
    "customer_id": st.one_of(
        st.floats().filter(_not_an_int64),  # 17.0 is the integer 17 (JSON Schema)
        st.none(),
        st.booleans(),
        st.just(""),
        st.just("   "),
        st.text(min_size=129, max_size=140),
        st.integers(min_value=INT64_MAX + 1),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    ),
    "amount": st.one_of(
        st.floats(max_value=-1e-300),
        st.floats(min_value=MAX_AMOUNT, exclude_min=True),
        st.just(float("nan")),
        st.just(float("inf")),
        st.text(max_size=5),
        st.none(),
        st.booleans(),
    ),
}
BAD_VALUES["terminal_id"] = BAD_VALUES["customer_id"]


def _check_api_error(exc: ApiError, statuses: tuple[int, ...] = (400, 413)) -> None:
    assert exc.status in statuses
    assert isinstance(exc.error, str) and exc.error
    assert 1 <= len(exc.details) <= MAX_DETAILS
    for item in exc.details:
        assert set(item) == {"field", "message"}
        assert isinstance(item["field"], str)  # "" only for a body key that is ""
        assert isinstance(item["message"], str) and item["message"]
    assert exc.details[0]["field"] in exc.error
    json.dumps({"error": exc.error, "details": exc.details})  # serialisable as it is answered


# -- the validation functions --------------------------------------------------------------------


@FUZZ
@given(body=json_values)
@example(body={"transactions": [{"transaction_id": 1}] * 80})
@example(body={"transactions": [1] * (MAX_BATCH + 1)})
@example(body={"transactions": None, "labels": []})
def test_score_validation_never_raises_anything_but_a_4xx(body: Any) -> None:
    try:
        items, _ = validate_score_request(body, MAX_BATCH, MAX_AMOUNT)
    except ApiError as exc:
        _check_api_error(exc)
        return
    assert 1 <= len(items) <= MAX_BATCH
    assert len({t.transaction_id for t in items}) == len(items)
    for tx in items:
        assert 0 <= tx.transaction_id <= INT64_MAX
        assert math.isfinite(tx.amount) and 0 <= tx.amount <= MAX_AMOUNT


@FUZZ
@given(body=json_values)
@example(body={"labels": [{"transaction_id": 1, "is_fraud": 1.0}]})
@example(body={"labels": [{"transaction_id": 1, "is_fraud": 1}] * (MAX_BATCH + 1)})
def test_feedback_validation_never_raises_anything_but_a_4xx(body: Any) -> None:
    try:
        labels = validate_feedback_request(body, MAX_BATCH)
    except ApiError as exc:
        _check_api_error(exc)
        return
    assert 1 <= len(labels) <= MAX_BATCH
    assert all(label.is_fraud in (0, 1) and 0 <= label.transaction_id <= INT64_MAX for label in labels)


@FUZZ
@given(
    raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/problem+json",
            "application/json; charset=latin-1",
            "text/plain",
            "",
            "multipart/form-data; boundary=x",
        ]
    ),
)
@example(raw=b"[" * 50_000, content_type="application/json")
@example(raw=b'{"amount": NaN, "x": -Infinity}', content_type="application/json")
@example(raw=b"\xff\xfe{}", content_type="application/json")
def test_body_parser_answers_a_4xx_on_any_bytes(raw: bytes, content_type: str) -> None:
    from flask import Request

    request = Request(EnvironBuilder(method="POST", data=raw, content_type=content_type).get_environ())
    try:
        parse_json_body(request)
    except ApiError as exc:
        _check_api_error(exc, (400, 415))


@FUZZ
@given(data=st.data(), n=st.integers(1, 5))
def test_valid_transactions_are_accepted_with_their_values(data: st.DataObject, n: int) -> None:
    drawn = [data.draw(transactions(transaction_id=i)) for i in range(n)]
    batch = data.draw(st.booleans()) or n > 1
    body = {"transactions": [tx for tx, _ in drawn]} if batch else drawn[0][0]
    items, is_batch = validate_score_request(body, MAX_BATCH, MAX_AMOUNT)
    assert is_batch == batch
    epoch = datetime(1970, 1, 1)
    for item, (tx, utc) in zip(items, drawn, strict=True):
        assert item.transaction_id == tx["transaction_id"]
        assert item.timestamp == utc
        assert item.ts_us == (utc - epoch) // timedelta(microseconds=1)
        assert item.amount == float(tx["amount"])
        assert item.customer_id == tx["customer_id"] and item.terminal_id == tx["terminal_id"]
        assert item.customer_key == canonical_id(tx["customer_id"])
        assert item.terminal_key == canonical_id(tx["terminal_id"])


@FUZZ
@given(
    moment=st.datetimes(),  # years 1 to 9999
    offset=st.one_of(st.none(), st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1)),
)
@example(moment=datetime(9999, 12, 31, 23), offset=-5 * 60)  # past year 9999 in UTC: was a 500
@example(moment=datetime(1, 1, 1, 0, 30), offset=60)  # before year 1 in UTC: was a 500
def test_any_date_time_with_any_offset_is_accepted_or_a_400(moment: datetime, offset: int | None) -> None:
    text = moment.isoformat()
    if offset is not None:
        sign = "+" if offset >= 0 else "-"
        text += f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    body = {"transaction_id": 1, "timestamp": text, "customer_id": 1, "terminal_id": 1, "amount": 1.0}
    try:
        (tx,), _ = validate_score_request(body, MAX_BATCH, MAX_AMOUNT)
    except ApiError as exc:
        _check_api_error(exc, (400,))
        assert [d["field"] for d in exc.details] == ["timestamp"]
        return
    assert 1970 <= tx.timestamp.year <= 2200


@FUZZ
@given(data=st.data(), field=st.sampled_from(sorted(BAD_VALUES)), batch=st.booleans())
def test_one_bad_field_is_a_400_naming_it(data: st.DataObject, field: str, batch: bool) -> None:
    tx, _ = data.draw(transactions(transaction_id=7))
    tx[field] = data.draw(BAD_VALUES[field])
    body = {"transactions": [data.draw(transactions(transaction_id=6))[0], tx]} if batch else tx
    with pytest.raises(ApiError) as caught:
        validate_score_request(body, MAX_BATCH, MAX_AMOUNT)
    _check_api_error(caught.value, (400,))
    where = f"transactions[1].{field}" if batch else field
    assert [d["field"] for d in caught.value.details] == [where]


@FUZZ
@given(
    labels=st.lists(
        st.fixed_dictionaries(
            {"transaction_id": st.integers(0, INT64_MAX), "is_fraud": st.sampled_from([0, 1])}
        ),
        min_size=1,
        max_size=MAX_BATCH,
        unique_by=lambda d: d["transaction_id"],
    )
)
def test_valid_labels_are_accepted(labels: list[dict]) -> None:
    got = validate_feedback_request({"labels": labels}, MAX_BATCH)
    assert [(x.transaction_id, x.is_fraud) for x in got] == [
        (d["transaction_id"], d["is_fraud"]) for d in labels
    ]


# -- through the app: never a 5xx, nothing written when rejected ----------------------------------


class _Observer:
    """Sees every commit to the state store (``PRAGMA data_version`` of its own connection)."""

    TABLES = ("transactions", "prediction_log", "label_log", "model_versions")

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None)

    def state(self) -> tuple:
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        counts = tuple(self.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in self.TABLES)
        return version, counts


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, seeded_template: Path, registry: harness.Registry):
    import shutil

    from fraud_kedro.api import create_app

    from .conftest import app_config

    db = tmp_path_factory.mktemp("fuzz") / "state.db"
    shutil.copyfile(seeded_template, db)
    with harness.mlflow_uri(registry.uri):
        app = create_app(app_config(registry, db, max_batch=MAX_BATCH))
    app.config["TESTING"] = True
    return app, db


def _post_and_check(
    app: Any, db: Path, caplog: pytest.LogCaptureFixture, path: str, raw: bytes, content_type: str | None
) -> int:
    observer = _Observer(db)
    before = observer.state()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = app.test_client().post(
            path, data=raw, content_type=content_type, headers={"X-API-Key": harness.API_KEY}
        )
    assert response.status_code < 500, response.data[:500]
    payload = response.get_json()
    if response.status_code != 200:
        assert set(payload) == {"error", "details"}
        assert observer.state() == before, f"a rejected request ({response.status_code}) wrote to the store"
        noisy = [
            r for r in caplog.records if r.name.startswith("fraud_kedro") and r.levelno >= logging.WARNING
        ]
        assert not noisy, [r.getMessage() for r in noisy]
    observer.conn.close()
    return response.status_code


@settings(FUZZ, max_examples=150)
@given(body=json_values, path=st.sampled_from(["/score", "/feedback"]))
def test_any_json_body_is_answered_below_500_and_a_rejection_writes_nothing(
    fuzz_app: Any, caplog: pytest.LogCaptureFixture, body: Any, path: str
) -> None:
    app, db = fuzz_app
    _post_and_check(app, db, caplog, path, json.dumps(body).encode(), "application/json")


@settings(FUZZ, max_examples=100)
@given(
    raw=st.binary(max_size=300),
    path=st.sampled_from(["/score", "/feedback"]),
    content_type=st.sampled_from(["application/json", "text/plain", None]),
)
@example(
    raw=b'{"transaction_id": 1, "timestamp": "2018-05-25T12:00:00", "customer_id": 1, '
    b'"terminal_id": 1, "amount": NaN}',
    path="/score",
    content_type="application/json",
)
def test_any_bytes_are_answered_below_500_and_a_rejection_writes_nothing(
    fuzz_app: Any, caplog: pytest.LogCaptureFixture, raw: bytes, path: str, content_type: str | None
) -> None:
    app, db = fuzz_app
    _post_and_check(app, db, caplog, path, raw, content_type)


@settings(FUZZ, max_examples=60)
@given(data=st.data(), field=st.sampled_from(sorted(BAD_VALUES)))
def test_a_batch_with_one_bad_transaction_scores_none_of_it(
    fuzz_app: Any, caplog: pytest.LogCaptureFixture, data: st.DataObject, field: str
) -> None:
    """All or nothing: a batch of valid transactions with one bad field is a 400 and writes nothing."""
    app, db = fuzz_app
    good = [data.draw(transactions(transaction_id=10**15 + i))[0] for i in range(3)]
    for tx in good:
        tx["timestamp"] = "2018-05-25T12:00:00"
    bad = dict(good[1])
    bad[field] = data.draw(BAD_VALUES[field])
    body = {"transactions": [good[0], bad, good[2]]}
    status = _post_and_check(
        app, db, caplog, "/score", json.dumps(body, allow_nan=True).encode(), "application/json"
    )
    assert status == 400


def test_an_accepted_request_does_write(fuzz_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The observer does see commits (the no-write checks above are not vacuous)."""
    app, db = fuzz_app
    observer = _Observer(db)
    before = observer.state()
    tx = {
        "transaction_id": 5 * 10**15,
        "timestamp": datetime(2018, 5, 25, 12, tzinfo=UTC).isoformat(),
        "customer_id": 1,
        "terminal_id": 2,
        "amount": 10.0,
    }
    response = app.test_client().post("/score", json=tx, headers={"X-API-Key": harness.API_KEY})
    assert response.status_code == 200
    after = observer.state()
    assert after[0] != before[0] and after[1][1] == before[1][1] + 1
