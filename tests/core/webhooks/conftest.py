"""Webhook fixtures: a signature-checking receiver on loopback, and services allowed to reach it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from usermgmt.cli.app import PROG_NAME, app
from usermgmt.core.context import Actor, RequestContext

from .receiver import Receiver


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.release.set()
    server.stop()


@pytest.fixture
def allow_private(monkeypatch):
    """Loopback receivers are private addresses: the CLI and servers read this setting."""
    monkeypatch.setenv("USERMGMT_WEBHOOK_ALLOW_PRIVATE", "1")


@pytest.fixture
def hook_services(make_services, allow_private, clock):
    """Services that may call loopback, retry at once, and run on a clock tests move."""
    return make_services(clock=clock, webhook_backoff_base=0)


@pytest.fixture
def subscribe(hook_services, receiver):
    """``subscribe(events=["*"])``: a subscription to the receiver, its secret handed to it."""

    def make(events=("*",), services=None, target=None):
        svc = services or hook_services
        into = target or receiver
        created = svc.webhooks.create(
            Actor.operator("cli", "tester"),
            RequestContext(),
            {"url": into.url, "events": list(events)},
        )
        into.secret = created.secret
        return created

    return make


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def cli(database_url):
    """``cli("webhooks", "list")``: the CLI in-process against the test database."""

    def invoke(*args: str, input: str | None = None) -> Run:
        result = CliRunner().invoke(
            app, ["--database-url", database_url, *args], input=input, prog_name=PROG_NAME
        )
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return Run(result.exit_code, result.stdout, result.stderr)

    return invoke
