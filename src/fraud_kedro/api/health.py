"""``/health`` (alive), ``/ready`` (model loaded, store writable), ``/metrics``, ``/model``."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from fraud_kedro.api.auth import require_api_key
from fraud_kedro.api.prometheus import render_metrics
from fraud_kedro.store import StateStoreError

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    """Alive: answers 200 whenever the process serves requests."""
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready() -> tuple[Response, int]:
    """Ready: 200 when a model is in service and the state store accepts writes, else 503."""
    state = current_app.extensions["fraud"]
    reasons = []
    model = state.champion.current
    if model is None:
        reasons.append(f"model not loaded: {state.champion.last_error or 'not attempted'}")
    try:
        state.get_store().check_writable()
    except StateStoreError as exc:
        reasons.append(str(exc))
    body = {
        "ready": not reasons,
        "model": None if model is None else {"name": model.name, "version": model.version},
        "reasons": reasons,
    }
    return jsonify(body), 200 if not reasons else 503


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics of all workers."""
    payload, content_type = render_metrics()
    return Response(payload, mimetype=content_type.split(";")[0], content_type=content_type)


@bp.get("/model")
@require_api_key
def model() -> tuple[Response, int]:
    """The model in service (and the shadow model), for people and the page at ``/``."""
    state = current_app.extensions["fraud"]
    champion = state.champion.current
    shadow = state.shadow.current if state.shadow is not None else None
    body = {
        "champion": None if champion is None else champion.info(),
        "shadow": None if shadow is None else {**shadow.info(), "share": state.config.shadow_share},
        "last_error": state.champion.last_error,
    }
    return jsonify(body), 200 if champion is not None else 503
