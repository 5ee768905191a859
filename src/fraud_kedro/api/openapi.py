"""``GET /openapi.json``: the OpenAPI 3.1 document, generated from :mod:`fraud_kedro.api.schemas`.

The bodies' schemas are the pydantic models' JSON Schemas (OpenAPI 3.1 uses JSON Schema 2020-12),
so the document and the validation cannot disagree. ``/openapi.json?openapi=3.0`` answers the same
document rewritten for OpenAPI 3.0 readers (the packaged Swagger UI 4 at ``/docs`` is one).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from fraud_kedro.api import schemas
from fraud_kedro.api.serving_config import ServingConfig

bp = Blueprint("openapi", __name__)

_JSON = "application/json"
_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": _ref("Error")}}}


def _ok(description: str, model: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": _ref(model)}}}


def component_schemas(config: ServingConfig) -> dict[str, Any]:
    """The JSON Schemas of every request and response model, keyed by model name."""
    models: list[type[BaseModel]] = [
        *schemas.request_models(config.max_batch, float(config.max_amount)),
        *schemas.RESPONSE_MODELS,
    ]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    return top["$defs"]


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    props = model.model_json_schema()["properties"]
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": prop.get("description", ""),
            "schema": {"type": prop["type"], "default": prop.get("default")},
        }
        for name, prop in props.items()
    ]


def _paths(config: ServingConfig) -> dict[str, Any]:
    secured = [{"ApiKey": []}] if config.api_keys else []
    auth_errors = {"401": _error("missing or invalid X-API-Key")} if config.api_keys else {}
    common_errors = {
        "400": _error("invalid body (also a batch over the maximum); `details` names each bad field"),
        **auth_errors,
        "413": _error("body over the size cap"),
        "415": _error("the body is not JSON (Content-Type)"),
        "503": _error("no model in service or state store unavailable; retry later"),
    }

    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"required": True, "content": {_JSON: {"schema": schema}}}

    return {
        "/score": {
            "post": {
                "summary": "Score one transaction or a batch",
                "operationId": "score",
                "security": secured,
                "parameters": _query_parameters(schemas.ScoreQuery),
                "requestBody": body({"oneOf": [_ref("Transaction"), _ref("ScoreBatch")]}),
                "responses": {
                    "200": _ok("scores, in request order", "ScoreResponse"),
                    "409": _error("a transaction id was already scored with other fields"),
                    **common_errors,
                },
            }
        },
        "/feedback": {
            "post": {
                "summary": "Confirmed fraud labels",
                "operationId": "feedback",
                "security": secured,
                "requestBody": body(_ref("FeedbackRequest")),
                "responses": {"200": _ok("labels recorded", "FeedbackResponse"), **common_errors},
            }
        },
        "/health": {
            "get": {
                "summary": "Liveness",
                "operationId": "health",
                "responses": {"200": _ok("alive", "Status")},
            }
        },
        "/ready": {
            "get": {
                "summary": "Readiness: model loaded and state store writable",
                "operationId": "ready",
                "responses": {"200": _ok("ready", "Ready"), "503": _ok("not ready", "Ready")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (all workers)",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/model": {
            "get": {
                "summary": "The model in service and the shadow model",
                "operationId": "model",
                "security": secured,
                "responses": {
                    "200": _ok("model information", "ModelInfo"),
                    **auth_errors,
                    "503": _ok("no model in service", "ModelInfo"),
                },
            }
        },
        "/admin/reload": {
            "post": {
                "summary": "Load the version the model alias points to now (admin key)",
                "operationId": "reload",
                "security": [{"ApiKey": []}],
                "responses": {
                    "200": {"description": "outcome per role"},
                    "401": _error("missing or invalid X-API-Key"),
                    "403": _error("no admin key configured"),
                    "500": _error("the new model failed to load; the old one stays"),
                },
            }
        },
    }


def build_spec(config: ServingConfig) -> dict[str, Any]:
    """The OpenAPI 3.1 document for a configuration (limits and auth come from it).

    Args:
        config: The service configuration.

    Returns:
        The document as a dict.
    """
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "fraud_kedro scoring API",
            "version": "1.0.0",
            "description": (
                "Card-fraud scoring with point-in-time history features. Errors are "
                '`{"error": ..., "details": [...]}`.'
            ),
        },
        "paths": _paths(config),
        "components": {
            "schemas": component_schemas(config),
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }


def _to_30(node: Any) -> Any:
    """One JSON Schema 2020-12 node rewritten for OpenAPI 3.0 (nullable, example, enum)."""
    if isinstance(node, list):
        return [_to_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_30(value) for key, value in node.items()}
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            out.pop(key)
            out.update(rest[0] if len(rest) == 1 and "$ref" not in rest[0] else {key: rest})
            if len(rest) == 1 and "$ref" in rest[0]:
                out["allOf"] = rest
                out.pop(key, None)
            out["nullable"] = True
    if "examples" in out and isinstance(out["examples"], list):
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out


def downgrade_to_30(spec: dict[str, Any]) -> dict[str, Any]:
    """The document for OpenAPI 3.0 readers (the schemas lose nothing the API checks)."""
    out = _to_30(spec)
    out["openapi"] = "3.0.3"
    out.pop("jsonSchemaDialect", None)
    return out


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document (``?openapi=3.0`` for an OpenAPI 3.0 reader)."""
    spec = build_spec(current_app.extensions["fraud"].config)
    if request.args.get("openapi") == "3.0":
        spec = downgrade_to_30(spec)
    return jsonify(spec)
