"""Fixtures shared by every test: both databases, services, an operator actor.

Every test that takes ``database_url`` (or ``services``) runs twice: on a fresh
SQLite file and on a fresh PostgreSQL database cloned from a migrated template
in a throwaway cluster the suite starts itself (tests/pgserver.py). Without
PostgreSQL binaries those runs are skipped loudly, except under CI=true,
where they fail.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import pgserver

from usermgmt.core import migrate
from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.db import Database
from usermgmt.core.services import build_services

IN_CI = os.environ.get("CI", "").lower() == "true"
KEEP_ENV = {"USERMGMT_TEST_POSTGRES_URL", "USERMGMT_PG_BIN"}
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
def pg_admin_url():
    external = pgserver.external_admin_url()
    if external:
        yield external
        return
    if pgserver.find_pg_bin() is None:
        message = "PostgreSQL server binaries not found: PostgreSQL tests cannot run"
        if IN_CI:
            pytest.fail(message + " (CI=true requires them)", pytrace=False)
        pytest.skip(message + " (install the postgresql package)")
    cluster = pgserver.PostgresCluster().start()
    try:
        yield cluster.admin_url
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_admin_url):
    """A migrated database that each test clones (CREATE DATABASE … TEMPLATE)."""
    name = f"usermgmt_tpl_{uuid.uuid4().hex[:8]}"
    pgserver.create_database(pg_admin_url, name)
    db = Database(pgserver.url_for(pg_admin_url, name))
    migrate.upgrade(db)
    db.dispose()
    yield name
    pgserver.drop_database(pg_admin_url, name)


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
    admin = request.getfixturevalue("pg_admin_url")
    template = request.getfixturevalue("pg_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    pgserver.create_database(admin, name, template=template)
    yield pgserver.url_for(admin, name)
    pgserver.drop_database(admin, name)


@pytest.fixture
def make_services(database_url):
    """Build services over the test database, with optional setting overrides."""
    built = []

    def make(**overrides):
        svc = build_services(load_settings(database_url=database_url, **overrides))
        built.append(svc)
        return svc

    yield make
    for svc in built:
        svc.close()


@pytest.fixture
def services(make_services):
    return make_services()


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
