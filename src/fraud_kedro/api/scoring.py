"""``POST /score``: one transaction or a batch."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from fraud_kedro.api.auth import require_api_key
from fraud_kedro.api.errors import ApiError
from fraud_kedro.api.validation import parse_json_body, validate_score_request

bp = Blueprint("scoring", __name__)

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


def parse_explain(value: str | None) -> bool:
    """The ``explain`` query parameter: true/false (also 1/0, yes/no); else a 400 naming it."""
    if value is None:
        return False
    if value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ApiError(400, "invalid query parameter", [
        {"field": "explain", "message": "must be true or false"}])


@bp.post("/score")
@require_api_key
def score() -> Response:
    """Score transactions: validate the whole body, then features, model, log, answer."""
    state = current_app.extensions["fraud"]
    body = parse_json_body(request)
    transactions, _ = validate_score_request(
        body, state.config.max_batch, state.config.max_amount
    )
    state.metrics.batch_size.observe(len(transactions))
    explain = parse_explain(request.args.get("explain"))
    result, shadow_job = state.coalescer.submit(transactions, explain=explain)
    response = Response(json.dumps(result.to_json()), status=200, mimetype="application/json")
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if shadow_job is not None:
        if state.config.shadow_after_response:
            response.call_on_close(shadow_job)
        else:
            shadow_job()
    return response
