"""Shared rate-limit stores that fail: a real redis-server stopped, stalled and started
again, and the `database` store with its PostgreSQL stopped. Counted requests get a 503
with the error body within the store's timeout, /health/ready names the dependency, one
line is logged per outage, and everything recovers by itself."""

from __future__ import annotations

import logging
import threading
import time

import pgserver
import pytest

from usermgmt.api.ratelimit import OutageGuard
from usermgmt.core.config import load_settings
from usermgmt.core.errors import ServiceUnavailable
from usermgmt.core.services import build_services

from .api_helpers import API, Api, assert_error

WRONG = "Wrong-Passw0rd"
TIMEOUT = 0.2  # USERMGMT_RATE_LIMIT_STORAGE_TIMEOUT in these tests
# A request on a failing store takes at most about two timeouts (connect, then read);
# one still running after this long waits on redis-py's own default (5 s) or forever.
HANG = 4.0


def bounded(fn, *args, within: float = HANG):
    """fn's result, failing (instead of hanging the suite) if it takes longer than ``within``."""
    result = {}

    def run():
        result["value"] = fn(*args)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"still waiting after {within}s: the timeout is not applied"
    return result["value"]


def eventually(check, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def login(api: Api, email: str = "nobody@example.com", ip: str = "198.51.100.1"):
    return api.simulate_post(
        f"{API}/auth/login", json={"email": email, "password": WRONG}, remote_addr=ip
    )


def store_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "usermgmt.api.ratelimit"]


def assert_store_unavailable(result) -> None:
    error = assert_error(result, 503, "SERVICE_UNAVAILABLE")
    assert error["details"] == {"unavailable": "rate_limit_store"}
    assert int(result.headers["Retry-After"]) >= 1


def redis_api(make_api, server, **overrides) -> Api:
    return make_api(
        rate_limit_login="3/minute",
        rate_limit_storage=server.url,
        rate_limit_storage_timeout=TIMEOUT,
        **overrides,
    )


def test_redis_down_is_a_503_logged_once_and_recovers_by_itself(
    make_api, redis_server, operator, ctx, caplog
):
    api = redis_api(make_api, redis_server)
    _uid, token = api.make_user(operator, ctx, "kept@example.com")  # one login, counted
    assert login(api).status_code == 401
    ready = api.simulate_get("/health/ready")
    assert ready.status_code == 200
    assert ready.json["checks"] == {"database": "ok", "rate_limit_store": "ok"}

    redis_server.stop()
    with caplog.at_level(logging.INFO):
        for _ in range(20):
            assert_store_unavailable(bounded(login, api))
        ready = bounded(api.simulate_get, "/health/ready")
        error = assert_error(ready, 503, "SERVICE_UNAVAILABLE")
        assert error["details"]["ready"] is False
        assert error["details"]["checks"] == {"database": "ok", "rate_limit_store": "unavailable"}
        assert "rate_limit_store" in error["message"]
        # What is not counted keeps working.
        assert api.simulate_get(f"{API}/auth/me", headers=api.bearer(token)).status_code == 200
        assert api.simulate_get("/health/live").status_code == 200
    outage = store_records(caplog)
    assert [r.levelname for r in outage] == ["WARNING"], outage  # once, not per request
    assert "Connection" in outage[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no 500s
    caplog.clear()

    redis_server.start()  # the same port, empty
    with caplog.at_level(logging.INFO):
        assert eventually(lambda: login(api).status_code == 401)
        assert api.simulate_get("/health/ready").status_code == 200
    assert [r.getMessage() for r in store_records(caplog)] == ["rate-limit store available again"]
    # Counting works again: three per minute for a client not seen before (and an
    # identifier whose failures do not lock it first).
    statuses = [login(api, "fresh2@example.com", "198.51.100.2").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_stalled_redis_fails_within_the_timeout_and_recovers(make_api, redis_server):
    api = redis_api(make_api, redis_server)
    assert login(api).status_code == 401  # a pooled connection exists

    redis_server.stall()
    try:
        # Neither the pooled connection (a command without an answer) nor a new one
        # (accepted by the kernel, never greeted) may wait longer than the timeout.
        assert_store_unavailable(bounded(login, api))
        time.sleep(1.1)  # past the guard's probe interval: the next request tries again
        assert_store_unavailable(bounded(login, api))
        ready = bounded(api.simulate_get, "/health/ready")
        assert ready.status_code == 503
        assert ready.json["error"]["details"]["checks"]["rate_limit_store"] == "unavailable"
    finally:
        redis_server.resume()

    assert eventually(lambda: login(api).status_code == 401)
    assert api.simulate_get("/health/ready").status_code == 200
    # No connection left reading a stale answer: counts are exact for a fresh client.
    statuses = [login(api, "fresh3@example.com", "198.51.100.3").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_a_redis_url_that_never_answered_starts_and_reports_unavailable(make_api, redis_server):
    redis_server.stop()  # down before the app is even built
    api = redis_api(make_api, redis_server)
    assert_store_unavailable(bounded(login, api))
    assert api.simulate_get("/health/ready").json["error"]["details"]["checks"] == {
        "database": "ok",
        "rate_limit_store": "unavailable",
    }
    redis_server.start()
    assert eventually(lambda: login(api).status_code == 401)


@pytest.mark.postgres
def test_database_store_with_the_database_down_is_a_503_and_recovers(restartable_pg):
    pgserver.create_database(restartable_pg.admin_url, "store")
    url = pgserver.url_for(restartable_pg.admin_url, "store")
    services = build_services(
        load_settings(database_url=url, rate_limit_login="3/minute", rate_limit_storage="database")
    )
    try:
        api = Api(services)
        assert login(api).status_code == 401

        restartable_pg.pause()
        # Refused at once; a database that does not answer is bounded by its connect timeout.
        result = bounded(login, api, within=15)
        error = assert_error(result, 503, "SERVICE_UNAVAILABLE")
        assert result.headers["Retry-After"]
        assert "database" in error["message"].lower()
        ready = bounded(api.simulate_get, "/health/ready", within=15)
        error = assert_error(ready, 503, "SERVICE_UNAVAILABLE")
        # The counters are the database's: the one dependency to name.
        assert error["details"]["checks"] == {"database": "unavailable"}

        restartable_pg.resume()
        assert eventually(lambda: login(api).status_code == 401, seconds=30)
        assert api.simulate_get("/health/ready").json["checks"] == {"database": "ok"}
        statuses = [login(api, "fresh4@example.com", "198.51.100.4").status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
    finally:
        services.close()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_tries_the_store_once_per_probe_interval():
    """No reconnection storm: while the store is down, one call per interval reaches it."""
    clock = Clock()
    guard = OutageGuard(ConnectionError, probe_interval=1.0, clock=clock)
    attempts = []

    def store_down():
        attempts.append(clock.now)
        raise ConnectionError("refused")

    for _ in range(3):  # three intervals of 50 requests each
        for _ in range(50):
            with pytest.raises(ServiceUnavailable):
                guard.call(store_down)
        clock.now += 1.0
    assert attempts == [100.0, 101.0, 102.0]
    assert guard.down
    assert guard.call(lambda: "counted") == "counted"
    assert not guard.down
    # A readiness probe asks the store now, whatever the interval says.
    assert not guard.probe(lambda: False)
    assert guard.down
    assert not guard.probe(lambda: False)
    assert guard.probe(lambda: True)
    assert not guard.down
