"""``POST /feedback``: confirmed labels as they arrive."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from fraud_kedro.api.auth import require_api_key
from fraud_kedro.api.validation import parse_json_body, validate_feedback_request

bp = Blueprint("feedback", __name__)


@bp.post("/feedback")
@require_api_key
def feedback() -> Response:
    """Record labels ``{"labels": [{"transaction_id", "is_fraud"}]}``."""
    state = current_app.extensions["fraud"]
    labels = validate_feedback_request(parse_json_body(request), state.config.max_batch)
    return jsonify(state.service.feedback(labels))
