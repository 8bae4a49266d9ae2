"""Fixtures for the account pages: a Falcon test client over real services (both
databases), and for the browser tests a live server per database and one Chromium."""

from __future__ import annotations

import pytest
from api.api_helpers import Api

from .page_helpers import PageClient


@pytest.fixture
def make_pages(make_services):
    def make(**overrides) -> PageClient:
        overrides.setdefault("rate_limit_login", "off")
        overrides.setdefault("rate_limit_auth", "off")
        return PageClient(Api(make_services(**overrides)))

    return make


@pytest.fixture
def pages(make_pages) -> PageClient:
    return make_pages()
