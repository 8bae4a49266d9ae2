"""Fixtures for the REST API tests: a Falcon test client over real services (both databases)."""

from __future__ import annotations

import os
import subprocess

import pytest

from .api_helpers import Api, LiveServer, free_port, launch_server, wait_ready


@pytest.fixture
def make_api(make_services):
    def make(**overrides) -> Api:
        overrides.setdefault("rate_limit_login", "off")
        overrides.setdefault("rate_limit_auth", "off")
        return Api(make_services(**overrides))

    return make


@pytest.fixture
def api(make_api) -> Api:
    return make_api()


@pytest.fixture
def admin(api, operator, ctx) -> tuple[str, str]:
    return api.make_user(operator, ctx, "root@example.com", roles=("admin",), username="root")


@pytest.fixture
def user(api, operator, ctx) -> tuple[str, str]:
    return api.make_user(operator, ctx, "ada@example.com", username="ada", first_name="Ada")


@pytest.fixture
def moderator(api, operator, ctx) -> tuple[str, str]:
    return api.make_user(operator, ctx, "mod@example.com", roles=("moderator",))


@pytest.fixture
def start_server(tmp_path):
    """Start `python -m usermgmt.api.server` on a free loopback port; stopped at teardown."""
    started: list[LiveServer] = []

    def start(database_url: str, *, wait: bool = True, env=None, args=()) -> LiveServer:
        port = free_port()
        log_path = tmp_path / f"server-{port}.log"
        environment = {
            **os.environ,
            "USERMGMT_DATABASE_URL": database_url,
            "USERMGMT_RATE_LIMIT_LOGIN": "off",
            "USERMGMT_RATE_LIMIT_AUTH": "off",
            **(env or {}),
        }
        server = launch_server(port, environment, log_path, *args)
        started.append(server)
        if wait:
            wait_ready(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            # SIGTERM first: a server with --workers stops its workers; SIGKILL would
            # leave them to notice on their own.
            server.process.terminate()
            try:
                server.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
