"""The page at ``/``: score a transaction by hand and see the model in service."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("ui", __name__)


@bp.get("/")
def index() -> str:
    """The HTML page (it calls ``/model`` and ``/score`` from the browser)."""
    return render_template("index.html")
