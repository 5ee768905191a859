"""``GET /console``: the analyst console (placeholder until its pages land)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("console", __name__)
