"""The client's pieces without a server: the seam's shape, refresh under the lock, errors."""

from __future__ import annotations

import inspect
import json
import threading

import httpx
import pytest

from usermgmt.client import backend as remote
from usermgmt.client.contexts import Context, ContextStore
from usermgmt.client.errors import error_from
from usermgmt.client.session import Connection, ContextCredentials, normalise_server
from usermgmt.core import errors, ports
from usermgmt.core.services import SERVICE_CLASSES

PORTS = {
    "users": (ports.UsersPort, remote.RemoteUsers),
    "user_reads": (ports.UserReadsPort, remote.RemoteUserReads),
    "roles": (ports.RolesPort, remote.RemoteRoles),
    "sessions": (ports.SessionsPort, remote.RemoteSessions),
    "audit": (ports.AuditPort, remote.RemoteAudit),
    "maintenance": (ports.MaintenancePort, remote.RemoteMaintenance),
    "transfer": (ports.TransferPort, remote.RemoteTransfer),
    "mail": (ports.MailPort, remote.RemoteMail),
    "health": (ports.HealthPort, remote.RemoteHealth),
    "api_keys": (ports.ApiKeysPort, remote.RemoteApiKeys),
    "mfa": (ports.MfaPort, remote.RemoteMfa),
    "webhooks": (ports.WebhooksPort, remote.RemoteWebhooks),
}
# What a backend carries besides its ports: the time and ids its face stamps with.
SOURCES = {"clock", "ids"}


def _port_methods(port):
    return [n for n, v in vars(port).items() if callable(v) and not n.startswith("_")]


def _accepts(impl, declared) -> list[str]:
    """What ``impl`` lacks of ``declared``'s parameters (name and kind)."""
    have = inspect.signature(impl).parameters
    missing = []
    for name, param in inspect.signature(declared).parameters.items():
        if name == "self":
            continue
        got = have.get(name)
        if got is None or got.kind != param.kind:
            missing.append(name)
    return missing


@pytest.mark.parametrize("name", sorted(PORTS))
def test_both_backends_implement_every_operation_of_each_port(name):
    import importlib

    port, remote_class = PORTS[name]
    module, cls = SERVICE_CLASSES[name]
    service_class = getattr(importlib.import_module(module), cls)
    for method in _port_methods(port):
        declared = getattr(port, method)
        for impl_class in (service_class, remote_class):
            impl = getattr(impl_class, method, None)
            assert impl is not None, f"{impl_class.__name__}.{method}"
            assert _accepts(impl, declared) == [], f"{impl_class.__name__}.{method}"


def test_every_port_of_the_backend_is_a_service():
    declared = set(ports.Backend.__annotations__)
    assert declared == set(PORTS) | SOURCES
    assert declared - SOURCES <= set(SERVICE_CLASSES)


@pytest.mark.parametrize(
    "status, code, cls",
    [
        (400, "VALIDATION_ERROR", errors.ValidationError),
        (401, "INVALID_CREDENTIALS", errors.InvalidCredentials),
        (401, "TOKEN_REUSED", errors.TokenReused),
        (403, "FORBIDDEN", errors.PermissionDenied),
        (403, "ACCOUNT_DISABLED", errors.AccountDisabled),
        (404, "NOT_FOUND", errors.NotFound),
        (409, "EMAIL_EXISTS", errors.EmailExists),
        (409, "USERNAME_EXISTS", errors.UsernameExists),
        (409, "CONFLICT", errors.Conflict),
        (423, "ACCOUNT_LOCKED", errors.AccountLocked),
        (429, "RATE_LIMITED", errors.RateLimited),
        (503, "SERVICE_UNAVAILABLE", errors.ServiceUnavailable),
        (404, None, errors.NotFound),
        (502, None, errors.DomainError),
    ],
)
def test_api_error_codes_map_back_to_the_core_errors(status, code, cls):
    body = {"error": {"code": code, "message": "m", "field_errors": {"email": ["bad"]}}}
    exc = error_from(status, body if code else "<html>", "https://u.example.com")
    assert type(exc) is cls
    if code:
        assert exc.field_errors == {"email": ["bad"]}


def test_service_unavailable_names_the_server():
    exc = error_from(
        503, {"error": {"code": "SERVICE_UNAVAILABLE", "message": "Down"}}, "https://s"
    )
    assert "https://s" in exc.message


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://users.example.com/", True),
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("http://users.example.com", False),
        ("https://user:pw@users.example.com", False),
        ("https://users.example.com/api/v1", False),
        ("users.example.com", False),
    ],
)
def test_server_urls(url, ok):
    if ok:
        assert normalise_server(url) == url.rstrip("/")
    else:
        with pytest.raises(errors.ValidationError):
            normalise_server(url)
    assert normalise_server("http://users.example.com", allow_http=True)


def _store(tmp_path, access="old-access", refresh="r1") -> ContextStore:
    store = ContextStore(tmp_path / "cfg")
    store.save("c", Context(server="https://s.example", access_token=access, refresh_token=refresh))
    return store


def _refreshing_transport(calls: list):
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content)["refresh_token"])
        n = len(calls)
        return httpx.Response(200, json={"tokens": {"access_token": f"a{n}",
                                                    "refresh_token": f"r{n + 1}"}})  # fmt: skip

    return httpx.MockTransport(handle)


def test_a_refresh_another_process_made_is_taken_not_repeated(tmp_path):
    store = _store(tmp_path, access="new-access", refresh="r2")  # the other process's pair
    calls: list = []
    conn = Connection("https://s.example", None, transport=_refreshing_transport(calls))
    mine = Context(server="https://s.example", access_token="old-access", refresh_token="r1")
    creds = ContextCredentials(store, "c", mine)
    assert creds.renew(conn, "old-access") is True
    assert calls == [] and creds.bearer() == "new-access"


def test_a_refresh_waits_for_the_lock_and_stores_the_new_pair(tmp_path):
    store = _store(tmp_path)
    calls: list = []
    conn = Connection("https://s.example", None, transport=_refreshing_transport(calls))
    _, context = store.get("c")
    creds = ContextCredentials(store, "c", context)
    done = threading.Event()
    with store.locked():
        worker = threading.Thread(target=lambda: (creds.renew(conn, "old-access"), done.set()))
        worker.start()
        assert not done.wait(0.3)  # blocked behind the lock holder
    worker.join(10)
    assert calls == ["r1"]
    _, saved = store.get("c")
    assert (saved.access_token, saved.refresh_token) == ("a1", "r2")
