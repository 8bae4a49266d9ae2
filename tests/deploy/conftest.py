"""Fixtures of the deployment tests: live servers and the programs deployed beside them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from api.api_helpers import LiveServer, free_port, wait_ready

from .components import Nginx, PgBouncer, need_binary


@pytest.fixture
def serve(tmp_path) -> Iterator:
    """``serve(database_url, env=…)``: a live ``python -m usermgmt.api.server`` on loopback."""
    started: list[LiveServer] = []

    def start(database_url: str, *, env=None, args=(), wait: bool = True) -> LiveServer:
        port = free_port()
        log_path = tmp_path / f"server-{port}.log"
        environment = {**os.environ, "USERMGMT_DATABASE_URL": database_url, **(env or {})}
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "usermgmt.api.server", "--port", str(port), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        server = LiveServer(process, port, log_path)
        started.append(server)
        if wait:
            wait_ready(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


@pytest.fixture(scope="module")
def pgbouncer(pg_admin_url) -> Iterator[PgBouncer]:
    """PgBouncer in transaction pooling mode before the tests' PostgreSQL server."""
    binary = need_binary("/usr/sbin/pgbouncer", "pgbouncer")
    bouncer = PgBouncer(binary, pg_admin_url, pool_size=3)
    try:
        yield bouncer
    finally:
        bouncer.close()


@pytest.fixture
def nginx_before():
    """``nginx_before(port)``: the shipped nginx site in front of a server on ``port``."""
    binary = need_binary("/usr/sbin/nginx", "nginx")
    started: list[Nginx] = []

    def start(upstream_port: int) -> Nginx:
        proxy = Nginx(binary, upstream_port)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.close()
