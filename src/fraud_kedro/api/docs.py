"""``GET /docs``: Swagger UI over ``/openapi.json``, its assets served from the installed package.

The assets come from the ``swagger-ui-bundle`` wheel (Swagger UI 4.15, which reads OpenAPI 3.0:
the page loads ``/openapi.json?openapi=3.0``, the same document rewritten for 3.0 readers), so the
page works without internet and loads nothing from a CDN.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("docs", __name__)

ASSETS = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png"}
)


@bp.get("/docs")
def docs() -> str:
    """The Swagger UI page."""
    return render_template("docs.html")


@bp.get("/docs/assets/<name>")
def asset(name: str) -> Response:
    """One Swagger UI asset from the package (a fixed allow-list: nothing else is served)."""
    if name not in ASSETS:
        abort(404)
    return send_from_directory(str(swagger_ui_path), name, max_age=86_400)


@bp.get("/docs/init.js")
def init_script() -> Response:
    """The page's start-up script (a file, not inline, so a strict CSP can forbid inline code)."""
    script = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json?openapi=3.0", dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout", validatorUrl: null, tryItOutEnabled: false
  });
};
"""
    return Response(script, mimetype="text/javascript")
