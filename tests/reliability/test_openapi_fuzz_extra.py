"""Schemathesis on ``POST /score`` and ``POST /feedback``: what ``tests/api/test_openapi_fuzz.py``
does not check.

That test asserts no 5xx and conformance of every answer to the document. Here, on the same
generated cases (more of them):

* data the document calls invalid is refused with a 4xx (``negative_data_rejection``), and data it
  calls valid is accepted (200, or 409 for an id already known), except for the two rules JSON
  Schema cannot state and the document states in words: timestamps between years 1970 and 2200,
  and distinct transaction ids within one request (``DOCUMENTED_RULES``);
* the API key the document requires is enforced (``ignored_auth``: the same case without the key
  must not succeed);
* a refused request writes nothing: no commit to the state store (``PRAGMA data_version`` of an
  observer connection) and no change in any table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import ignored_auth, negative_data_rejection, not_a_server_error

from . import harness

CHECKS = [not_a_server_error, negative_data_rejection, ignored_auth]
# rules of the API the document gives in words only: (field suffix, start of the 400 message)
DOCUMENTED_RULES = (
    ("timestamp", "must be between years"),
    ("transaction_id", "duplicates"),
    # docs/serving.md: ids are integers or non-blank strings ("\x1f" is blank to str.strip)
    ("_id", "must be a non-blank string"),
)
TABLES = ("transactions", "prediction_log", "label_log", "model_versions")


def _state(conn: sqlite3.Connection) -> tuple:
    version = conn.execute("PRAGMA data_version").fetchone()[0]
    return version, tuple(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_invalid_data_is_refused_auth_is_enforced_and_a_refusal_writes_nothing(
    make_app, state_db: Path, mode: GenerationMode
) -> None:
    app = make_app(state_db)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    observer = sqlite3.connect(state_db, isolation_level=None)
    tested, refused, accepted = [], [0], [0]
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method != "post" or operation.path not in {"/score", "/feedback"}:
            continue
        tested.append(operation.path)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=100,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            before = _state(observer)
            response = case.call(headers={"X-API-Key": harness.API_KEY})
            case.validate_response(response, checks=CHECKS, headers={"X-API-Key": harness.API_KEY})
            if response.status_code >= 400:
                refused[0] += 1
                assert _state(observer) == before, f"refused with {response.status_code} but wrote"
            else:
                accepted[0] += 1
            if mode.is_positive and response.status_code not in (200, 409):
                details = response.json()["details"]
                assert response.status_code == 400 and all(
                    any(d["field"].endswith(f) and d["message"].startswith(m) for f, m in DOCUMENTED_RULES)
                    for d in details
                ), f"valid data refused: {response.status_code} {details}"

        check()
    observer.close()
    assert sorted(tested) == ["/feedback", "/score"]
    if mode.is_negative:
        assert refused[0] > 100
    else:
        assert accepted[0] > 50  # valid cases do get through (the checks above are not vacuous)
