"""Webhook fixtures: a signature-checking receiver on loopback, and services allowed to reach it."""

from __future__ import annotations

import pytest

from usermgmt.core.context import Actor, RequestContext

from .receiver import Clock, Receiver


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
def hook_services(make_services, allow_private):
    """Services that may call loopback, retry at once, and run on a clock tests move."""
    svc = make_services(webhook_backoff_base=0)
    svc.webhooks.clock = Clock()
    return svc


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
