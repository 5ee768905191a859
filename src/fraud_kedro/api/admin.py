"""``POST /admin/reload``: load the version the model alias points to now (API-key protected)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify

from fraud_kedro.api.auth import require_admin_key
from fraud_kedro.api.errors import ApiError
from fraud_kedro.api.model_loader import announce_reload
from fraud_kedro.store import StateStoreError

logger = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.post("/reload")
@require_admin_key
def reload() -> Response:
    """Reload the champion (and shadow) in this worker, then tell the other workers.

    A model that fails to load leaves the previous one in service (answer 500 naming the error).
    """
    state = current_app.extensions["fraud"]
    answers = {}
    failed = []
    for role, holder in state.holders().items():
        outcome = holder.reload()
        state.metrics.reloads.labels(role, outcome.status).inc()
        answers[role] = {
            "status": outcome.status,
            "version": outcome.model.version if outcome.model else None,
            "previous_version": outcome.previous_version,
            "error": outcome.error,
        }
        if outcome.status == "failed":
            failed.append(f"{role}: {outcome.error}")
        elif outcome.status == "loaded":
            try:
                token = announce_reload(state.get_store(), role)
                if state.watcher is not None:
                    state.watcher.mark_seen(role, token)
            except StateStoreError as exc:
                logger.warning("reload not announced to other workers: %s", exc)
                answers[role]["warning"] = f"other workers not told: {exc}"
    if failed:
        raise ApiError(500, "model reload failed; the previous model stays in service", failed)
    return jsonify(answers)
