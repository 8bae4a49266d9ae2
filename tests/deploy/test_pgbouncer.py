"""PgBouncer in transaction pooling mode before PostgreSQL, with two servers under load.

In transaction mode each transaction may run on another server session, so a
statement psycopg prepared in one session is unknown in the next:
``prepared statement "_pg3_0" does not exist``. With
``USERMGMT_DATABASE_PREPARED_STATEMENTS=false`` (or ``prepare_threshold=none``
in the URL) nothing is prepared, and the same load passes without an error.
"""

from __future__ import annotations

import pytest

from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.services import build_services

from .load import mixed_load

pytestmark = pytest.mark.postgres

EMAIL = "load@example.com"
PASSWORD = "Corr3ct-Horse-Battery"


@pytest.fixture
def database(pg_database) -> str:
    """A migrated database with the account the load logs in with."""
    services = build_services(load_settings(database_url=pg_database))
    try:
        services.users.create(
            Actor.operator("cli", "tester"),
            RequestContext(ip="127.0.0.1", request_id="setup"),
            {"email": EMAIL, "password": PASSWORD, "roles": ["admin"], "first_name": "Load"},
        )
    finally:
        services.close()
    return pg_database


def two_servers(serve, url: str, env: dict | None = None):
    env = {"USERMGMT_RATE_LIMIT_LOGIN": "off", "USERMGMT_RATE_LIMIT_AUTH": "off", **(env or {})}
    return [serve(url, env=env, args=("--threads", "4")) for _ in range(2)]


def test_prepared_statements_off_no_errors_through_transaction_pooling(pgbouncer, database, serve):
    servers = two_servers(
        serve, pgbouncer.url_for(database), {"USERMGMT_DATABASE_PREPARED_STATEMENTS": "false"}
    )
    requests, failures = mixed_load([s.port for s in servers], EMAIL, PASSWORD)
    assert failures == []
    assert requests >= 6 * 25 * 5
    for server in servers:
        assert "prepared statements off" in server.log().splitlines()[0]
        assert "prepared statement" not in server.log().split("\n", 1)[1]


def test_prepare_threshold_none_in_the_url_is_the_same(pgbouncer, database, serve):
    url = pgbouncer.url_for(database) + "?prepare_threshold=none"
    servers = two_servers(serve, url)
    _, failures = mixed_load([s.port for s in servers], EMAIL, PASSWORD, rounds=12)
    assert failures == []
    assert all("prepared statements off" in s.log() for s in servers)


def test_prepared_statements_on_fail_through_transaction_pooling(pgbouncer, database, serve):
    """The control: this set-up does reproduce the failure the setting prevents."""
    servers = two_servers(serve, pgbouncer.url_for(database))
    assert "prepared statements off" not in servers[0].log()
    _, failures = mixed_load(
        [s.port for s in servers], EMAIL, PASSWORD, rounds=40, stop_at_first_failure=True
    )
    assert failures
    logs = "".join(s.log() for s in servers)
    assert "prepared statement" in logs


def test_prepare_threshold_zero_in_the_url_serves(database, serve):
    """A number in the URL reaches psycopg as a number (as a string it broke every query)."""
    server = serve(database + "?prepare_threshold=0", env={"USERMGMT_RATE_LIMIT_LOGIN": "off"})
    _, failures = mixed_load([server.port], EMAIL, PASSWORD, clients=2, rounds=4)
    assert failures == []
    assert "prepared statements off" not in server.log()
