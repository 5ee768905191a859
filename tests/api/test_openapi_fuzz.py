"""Property-based tests from /openapi.json (schemathesis): valid and invalid bodies generated from
the schema never give a 5xx, and every answer matches the documented status codes and schemas."""

from __future__ import annotations

import pytest
import schemathesis
from conftest import make_config
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from fraud_kedro.api import create_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SKIPPED = {"/admin/reload"}  # needs an admin key and reloads models: covered in test_models


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(registry, state_db, mode):
    app = create_app(make_config(registry, state_db, api_keys="fuzz-key"))
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED or (mode.is_negative and operation.method != "post"):
            continue  # a GET without parameters has nothing to make invalid
        tested.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=40 if operation.method == "post" else 5,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            case.call_and_validate(headers={"X-API-Key": "fuzz-key"}, checks=CHECKS)

        check()
    assert {"POST /score", "POST /feedback"} <= set(tested)
