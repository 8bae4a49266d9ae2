"""Fixtures shared by every test: both databases, services, an operator actor.

Every test that takes ``database_url`` (or ``services``) runs twice: on a fresh
SQLite file and on a fresh PostgreSQL database cloned from a migrated template
in a throwaway cluster the suite starts itself. PostgreSQL's fixtures are in
tests/pgserver.py and Redis's in tests/redisserver.py, both registered here as
plugins; without their servers those tests are skipped loudly, except under
CI=true, where they fail (tests/ci.py).
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from usermgmt.core import migrate
from usermgmt.core.clock import ManualClock
from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.db import Database
from usermgmt.core.services import build_services

pytest_plugins = ["pgserver", "redisserver"]

# The test servers' own settings survive the clean environment every test gets.
KEEP_ENV = {"USERMGMT_TEST_POSTGRES_URL", "USERMGMT_PG_BIN", "USERMGMT_REDIS_SERVER"}
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the developer's settings or writes to their data dir."""
    for name in list(os.environ):
        if name.startswith("USERMGMT_") and name not in KEEP_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("USERMGMT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("USERMGMT_BCRYPT_ROUNDS", "4")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    return path


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(request, backend, tmp_path):
    if backend == "sqlite":
        path = tmp_path / "usermgmt.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    yield request.getfixturevalue("pg_database")


@pytest.fixture
def make_services(database_url):
    """Build services over the test database, with optional setting overrides and the
    clock and id source to use (the system's by default)."""
    built = []

    def make(*, clock=None, ids=None, **overrides):
        settings = load_settings(database_url=database_url, **overrides)
        svc = build_services(settings, clock=clock, ids=ids)
        built.append(svc)
        return svc

    yield make
    for svc in built:
        svc.close()


@pytest.fixture
def services(make_services):
    return make_services()


@pytest.fixture
def clock() -> ManualClock:
    """A clock that stands still at the present until a test moves it (give it to
    ``make_services(clock=clock)``): expiry, lockout and backoff without sleeping."""
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def operator() -> Actor:
    return Actor.operator("cli", "tester")


@pytest.fixture
def ctx() -> RequestContext:
    return RequestContext(ip="127.0.0.1", request_id="test-request")


STRONG_PASSWORD = "Corr3ct-Horse-Battery"


@pytest.fixture
def admin_user(services, operator, ctx):
    return services.users.create(
        operator,
        ctx,
        {
            "email": "root@example.com",
            "username": "root",
            "password": STRONG_PASSWORD,
            "roles": ["admin"],
        },
    )


def pytest_collection_modifyitems(config, items):
    """The longest tests run first, so xdist's other worker carries the rest beside them."""
    items.sort(key=lambda item: item.get_closest_marker("starts_first") is None)
