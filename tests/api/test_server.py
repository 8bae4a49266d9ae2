"""A real `python -m usermgmt.api.server` process on loopback: start-up, shutdown,
two processes on one PostgreSQL, and the database going away and coming back."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request

import pgserver
import pytest
from sqlalchemy import text

from usermgmt.core import migrate
from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.db import Database
from usermgmt.core.services import build_services

from .api_helpers import API, STRONG_PASSWORD

pytestmark = pytest.mark.slow


def call(url: str, method: str = "GET", body=None, token: str | None = None, timeout=30):
    """(status, headers, parsed JSON or text) without raising on HTTP errors."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, exc.headers, exc.read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode()
    return status, headers, payload


def seed_user(database_url: str, email: str, roles=("user",)) -> None:
    services = build_services(load_settings(database_url=database_url))
    try:
        services.users.create(
            Actor.operator("cli", "test"),
            RequestContext(),
            {"email": email, "password": STRONG_PASSWORD, "roles": list(roles)},
        )
    finally:
        services.close()


def sigterm_during_a_login(server, exit_within: float = 60):
    """SIGTERM the server while a (slow, wrong-password) login is in flight; its response.

    Asserts the server then exits 0 within ``exit_within`` seconds.
    """
    result = {}

    def slow_login():
        result["response"] = call(
            server.url + f"{API}/auth/login",
            "POST",
            {"email": "nobody@example.com", "password": "Wrong-Passw0rd"},
            timeout=60,
        )

    worker = threading.Thread(target=slow_login)
    worker.start()
    time.sleep(0.5)  # let the request reach a server thread
    server.process.send_signal(signal.SIGTERM)
    worker.join(timeout=60)
    assert server.process.wait(timeout=exit_within) == 0
    return result["response"]


def test_start_serve_and_sigterm_finishes_the_request_in_flight(start_server, tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    # A high bcrypt cost makes a login slow enough to be in flight when SIGTERM lands.
    server = start_server(url, env={"USERMGMT_BCRYPT_ROUNDS": "14"})
    assert f"{server.url}/docs" in server.log()
    status, headers, body = call(server.url + "/health")
    assert status == 200 and body["status"] == "ok"
    assert headers["X-Request-ID"]

    status, _headers, body = sigterm_during_a_login(server)
    assert status == 401 and body["error"]["code"] == "INVALID_CREDENTIALS"
    log = server.log()
    assert "shutting down" in log and "server stopped" in log
    # One JSON line per request, with the route and the request id.
    access = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and '"usermgmt.api.access"' in line
    ]
    assert {a["route"] for a in access} >= {"/health", f"{API}/auth/login"}
    assert all(a["request_id"] for a in access)
    assert "Wrong-Passw0rd" not in log


def test_refuses_a_schema_that_is_behind(start_server, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    migrate.upgrade(db, "0001")
    db.dispose()
    server = start_server(url, wait=False)
    assert server.process.wait(timeout=60) == 5
    assert "error: SERVICE_UNAVAILABLE:" in server.log()
    assert "usermgmt db upgrade" in server.log()


def test_a_taken_port_is_a_clear_error(start_server, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = start_server(
            f"sqlite:///{tmp_path / 'port.db'}", wait=False, args=("--port", str(port))
        )
        assert server.process.wait(timeout=60) == 1
    assert f"error: PORT_IN_USE: 127.0.0.1:{port} is already in use;" in server.log()
    assert "Traceback" not in server.log()


def test_waitress_body_limit_answers_with_the_error_body(start_server, tmp_path):
    limits = {"USERMGMT_MAX_BODY_BYTES": "2048", "USERMGMT_MAX_IMPORT_BYTES": "2048"}
    server = start_server(f"sqlite:///{tmp_path / 'limit.db'}", env=limits)
    big = {"email": "a@example.com", "password": "x" * 5000}
    status, headers, body = call(server.url + f"{API}/auth/login", "POST", big)
    assert status == 413
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert body["error"]["request_id"] == headers["X-Request-ID"]


@pytest.mark.postgres
def test_two_processes_on_one_postgres_behave_as_one(start_server, pg_database):
    url = pg_database
    seed_user(url, "two@example.com")
    shared = {
        "USERMGMT_RATE_LIMIT_LOGIN": "4/minute",
        "USERMGMT_RATE_LIMIT_STORAGE": "database",
    }
    first = start_server(url, env=shared)
    second = start_server(url, env=shared)
    login = {"email": "two@example.com", "password": STRONG_PASSWORD}
    status, _h, body = call(first.url + f"{API}/auth/login", "POST", login)
    assert status == 200
    token = body["tokens"]["access_token"]
    assert call(second.url + f"{API}/auth/me", token=token)[0] == 200
    assert call(first.url + f"{API}/auth/logout", "POST", token=token)[0] == 204
    status, _h, body = call(second.url + f"{API}/auth/me", token=token)
    assert status == 401 and body["error"]["code"] == "UNAUTHORIZED"
    # The login limit is counted across both processes (4 per minute in all).
    wrong = {"email": "two@example.com", "password": "Wrong-Passw0rd"}
    statuses = [
        call(s.url + f"{API}/auth/login", "POST", wrong)[0] for s in (second, first, second)
    ]
    assert statuses == [401, 401, 401]
    status, headers, body = call(first.url + f"{API}/auth/login", "POST", wrong)
    assert status == 429 and int(headers["Retry-After"]) >= 1
    first.stop()
    second.stop()


@pytest.mark.postgres
def test_database_down_is_503_and_recovers_without_restart(start_server, restartable_pg):
    pgserver.create_database(restartable_pg.admin_url, "live")
    url = pgserver.url_for(restartable_pg.admin_url, "live")
    seed_user(url, "down@example.com")
    server = start_server(url)
    login = {"email": "down@example.com", "password": STRONG_PASSWORD}
    status, _h, body = call(server.url + f"{API}/auth/login", "POST", login)
    assert status == 200
    token = body["tokens"]["access_token"]
    assert call(server.url + "/health/ready")[0] == 200

    restartable_pg.pause()
    status, headers, body = call(server.url + "/health/ready")
    assert status == 503
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert body["error"]["details"]["ready"] is False
    assert headers["Retry-After"]
    status, _h, body = call(server.url + f"{API}/auth/me", token=token)
    assert status == 503 and body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert call(server.url + "/health/live")[0] == 200

    restartable_pg.resume()
    for _ in range(100):  # bounded: the pool reconnects on its own
        if call(server.url + "/health/ready")[0] == 200:
            break
        time.sleep(0.2)
    assert call(server.url + "/health/ready")[0] == 200
    assert call(server.url + f"{API}/auth/me", token=token)[0] == 200
    assert server.process.poll() is None  # never restarted


@pytest.mark.parametrize(("cores", "threads"), [(None, 2), (1, 2), (2, 2), (6, 6), (64, 8)])
def test_default_threads_follow_the_cores(monkeypatch, cores, threads):
    from usermgmt.api import server

    monkeypatch.setattr(server.os, "cpu_count", lambda: cores)
    assert server.default_threads() == threads


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_server_process_pool_holds_its_peak_without_reconnecting(database_url, operator, ctx):
    """Two request threads searching at once (a scope, a page session and two counts each)
    reuse the pool's connections: a pool smaller than that peak opened a new PostgreSQL
    backend for every other search."""
    from sqlalchemy import event

    threads = 2
    services = build_services(load_settings(database_url=database_url), threads=threads)
    try:
        for i in range(3):
            services.users.create(operator, ctx, {"email": f"searched{i}@example.com"})
        opened = []
        event.listen(services.db.engine, "connect", lambda *_: opened.append(1))
        barrier = threading.Barrier(threads)

        def search() -> None:
            for _ in range(40):
                barrier.wait()
                with services.db.connect() as reader:  # a request's scope, held throughout
                    reader.execute(text("SELECT 1"))
                    page = services.user_reads.list(operator, {"search": "searched"})
                    assert page.meta.total == 3

        def run() -> None:
            workers = [threading.Thread(target=search) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()

        run()  # the pool fills up to its peak
        warm = len(opened)
        run()
        assert warm <= services.db.engine.pool.size()
        assert len(opened) == warm  # no connection was opened again
    finally:
        services.close()
