"""``GET /openapi.json``: the OpenAPI 3 description of the API (tested with schemathesis)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from fraud_kedro.api.serving_config import ServingConfig
from fraud_kedro.api.validation import INT64_MAX, MAX_ID_LENGTH, MAX_YEAR, MIN_YEAR

bp = Blueprint("openapi", __name__)

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": _ref("Error")}}}


def build_spec(config: ServingConfig) -> dict[str, Any]:
    """The OpenAPI 3.0 document for a configuration (limits and auth come from it).

    Args:
        config: The service configuration.

    Returns:
        The document as a dict.
    """
    entity_id = {
        "oneOf": [
            {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": INT64_MAX},
            {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": r"\S"},
        ]
    }
    secured = [{"ApiKey": []}] if config.api_keys else []
    auth_errors = {"401": _error("missing or invalid X-API-Key")} if config.api_keys else {}
    common_errors = {
        "400": _error("invalid body (also a batch over the maximum); `details` names each bad field"),
        **auth_errors,
        "413": _error("body over the size cap"),
        "415": _error("the body is not JSON (Content-Type)"),
        "503": _error("no model in service or state store unavailable; retry later"),
    }
    schemas: dict[str, Any] = {
        "Transaction": {
            "type": "object",
            "additionalProperties": False,
            "required": ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount"],
            "properties": {
                "transaction_id": {
                    "type": "integer",
                    "format": "int64",
                    "minimum": 0,
                    "maximum": INT64_MAX,
                    "description": "unique id; an id already scored with other fields gives 409",
                },
                "timestamp": {
                    "type": "string",
                    "format": "date-time",
                    "description": (
                        "ISO 8601 / RFC 3339; naive means UTC; years "
                        f"{MIN_YEAR}-{MAX_YEAR} (others are answered 400)"
                    ),
                    "example": "2018-09-30T12:00:00",
                },
                "customer_id": {**entity_id, "description": "card / customer id"},
                "terminal_id": {**entity_id, "description": "merchant terminal id"},
                "amount": {"type": "number", "minimum": 0, "maximum": config.max_amount},
            },
        },
        "ScoreBatch": {
            "type": "object",
            "additionalProperties": False,
            "required": ["transactions"],
            "properties": {
                "transactions": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": config.max_batch,
                    "items": _ref("Transaction"),
                    "description": "distinct transaction ids",
                }
            },
        },
        "ScoreResponse": {
            "type": "object",
            "required": ["model", "results"],
            "properties": {
                "model": _ref("ModelRef"),
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["transaction_id", "fraud_probability", "is_fraud_predicted"],
                        "properties": {
                            "transaction_id": {"type": "integer", "format": "int64"},
                            "fraud_probability": {"type": "number", "minimum": 0, "maximum": 1},
                            "is_fraud_predicted": {"type": "boolean"},
                            "reasons": {
                                "type": "array",
                                "description": "only with explain=true: the top contributions "
                                "to the score's log-odds, largest |contribution| first",
                                "items": _ref("Reason"),
                            },
                        },
                    },
                },
            },
        },
        "Reason": {
            "type": "object",
            "required": ["feature", "description", "value", "contribution"],
            "properties": {
                "feature": {"type": "string", "description": "model feature name"},
                "description": {
                    "type": "string",
                    "description": "plain language, e.g. \"amount is 6.1x this card's 30-day mean\"",
                },
                "value": {"type": "number", "description": "the feature's value"},
                "contribution": {
                    "type": "number",
                    "description": "change of the fraud log-odds (positive: towards fraud); "
                    "exact TreeSHAP for LightGBM/XGBoost, scaled by the Platt calibration; "
                    "with the base value they add up to logit(fraud_probability)",
                },
            },
        },
        "ModelRef": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
        },
        "FeedbackRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["labels"],
            "properties": {
                "labels": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": config.max_batch,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["transaction_id", "is_fraud"],
                        "properties": {
                            "transaction_id": {
                                "type": "integer",
                                "format": "int64",
                                "minimum": 0,
                                "maximum": INT64_MAX,
                            },
                            "is_fraud": {"type": "integer", "enum": [0, 1]},
                        },
                    },
                }
            },
        },
        "FeedbackResponse": {
            "type": "object",
            "required": ["received", "matched"],
            "properties": {
                "received": {"type": "integer"},
                "matched": {"type": "integer", "description": "labels whose id is in the history"},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error", "details"],
            "properties": {"error": {"type": "string"}, "details": {"type": "array"}},
        },
        "Status": {"type": "object", "properties": {"status": {"type": "string"}}},
        "Ready": {
            "type": "object",
            "required": ["ready", "reasons"],
            "properties": {
                "ready": {"type": "boolean"},
                "model": {"nullable": True, "allOf": [_ref("ModelRef")]},
                "reasons": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ModelInfo": {
            "type": "object",
            "properties": {
                "champion": {"type": "object", "nullable": True},
                "shadow": {"type": "object", "nullable": True},
                "last_error": {"type": "string", "nullable": True},
            },
        },
    }
    paths: dict[str, Any] = {
        "/score": {
            "post": {
                "summary": "Score one transaction or a batch",
                "operationId": "score",
                "security": secured,
                "parameters": [
                    {
                        "name": "explain",
                        "in": "query",
                        "required": False,
                        "description": "true: each result also has its reasons (logged with "
                        "the score); costs < 2 ms a request (docs/serving.md)",
                        "schema": {"type": "boolean", "default": False},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        _JSON: {"schema": {"oneOf": [_ref("Transaction"), _ref("ScoreBatch")]}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "scores, in request order",
                        "content": {_JSON: {"schema": _ref("ScoreResponse")}},
                    },
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
                "requestBody": {
                    "required": True,
                    "content": {_JSON: {"schema": _ref("FeedbackRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "labels recorded",
                        "content": {_JSON: {"schema": _ref("FeedbackResponse")}},
                    },
                    **common_errors,
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Liveness",
                "operationId": "health",
                "responses": {
                    "200": {"description": "alive", "content": {_JSON: {"schema": _ref("Status")}}}
                },
            }
        },
        "/ready": {
            "get": {
                "summary": "Readiness: model loaded and state store writable",
                "operationId": "ready",
                "responses": {
                    "200": {"description": "ready", "content": {_JSON: {"schema": _ref("Ready")}}},
                    "503": {
                        "description": "not ready",
                        "content": {_JSON: {"schema": _ref("Ready")}},
                    },
                },
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
                    "200": {
                        "description": "model information",
                        "content": {_JSON: {"schema": _ref("ModelInfo")}},
                    },
                    **auth_errors,
                    "503": {
                        "description": "no model in service",
                        "content": {_JSON: {"schema": _ref("ModelInfo")}},
                    },
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
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "fraud_kedro scoring API",
            "version": "1.0.0",
            "description": (
                "Card-fraud scoring with point-in-time history features. Errors are "
                '`{"error": ..., "details": [...]}`.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document."""
    return jsonify(build_spec(current_app.extensions["fraud"].config))
