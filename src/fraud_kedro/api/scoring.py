"""``POST /score``: one transaction or a batch."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from fraud_kedro.api.auth import require_api_key
from fraud_kedro.api.validation import (
    parse_json_body,
    validate_score_query,
    validate_score_request,
)

bp = Blueprint("scoring", __name__)



@bp.post("/score")
@require_api_key
def score() -> Response:
    """Score transactions: validate the whole body, then features, model, log, answer."""
    state = current_app.extensions["fraud"]
    query = validate_score_query(request.args)  # `.explain` asks for the reasons
    body = parse_json_body(request)
    transactions, _ = validate_score_request(
        body, state.config.max_batch, state.config.max_amount
    )
    state.metrics.batch_size.observe(len(transactions))
    result, shadow_job = state.coalescer.submit(transactions, explain=query.explain)
    response = Response(json.dumps(result.to_json()), status=200, mimetype="application/json")
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if shadow_job is not None:
        if state.config.shadow_after_response:
            response.call_on_close(shadow_job)
        else:
            shadow_job()
    return response
