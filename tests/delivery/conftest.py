"""Fixtures of the delivery tests."""

from __future__ import annotations

import pytest

from .helpers import api_routes


@pytest.fixture(scope="session")
def app_routes(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """URL rules of the scoring API (``create_app`` without a model, in a temporary folder)."""
    return api_routes(tmp_path_factory.mktemp("api"))
