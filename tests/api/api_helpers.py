"""Helpers for the REST API tests (fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.util
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from falcon import testing

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

from usermgmt.api.app import create_app  # noqa: E402


def _root_conftest():
    """tests/conftest.py by path: inside tests/api, ``import conftest`` is this directory's."""
    spec = importlib.util.spec_from_file_location("_usermgmt_root_conftest", TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STRONG_PASSWORD = _root_conftest().STRONG_PASSWORD

API = "/api/v1"
OTHER_PASSWORD = "Sec0nd-Horse-Battery"


class Api:
    """A test client with helpers for the common flows."""

    def __init__(self, services) -> None:
        self.services = services
        self.app = create_app(services)
        self.client = testing.TestClient(self.app)

    def __getattr__(self, name):
        return getattr(self.client, name)

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def register(self, email: str, password: str = STRONG_PASSWORD, **extra):
        return self.client.simulate_post(
            f"{API}/auth/register", json={"email": email, "password": password, **extra}
        )

    def login(self, email: str, password: str = STRONG_PASSWORD, **kwargs):
        return self.client.simulate_post(
            f"{API}/auth/login", json={"email": email, "password": password}, **kwargs
        )

    def token_for(self, email: str, password: str = STRONG_PASSWORD) -> str:
        result = self.login(email, password)
        assert result.status_code == 200, result.text
        return result.json["tokens"]["access_token"]

    def make_user(self, operator, ctx, email: str, roles=("user",), **extra) -> tuple[str, str]:
        """Create a user through the core; return (id, access token)."""
        user = self.services.users.create(
            operator,
            ctx,
            {"email": email, "password": STRONG_PASSWORD, "roles": list(roles), **extra},
        )
        return str(user.id), self.token_for(email)


# ---- live servers ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def launch_server(port: int, env: dict[str, str], log_path: Path, *args: str) -> LiveServer:
    """`usermgmt serve` on loopback in a subprocess (not yet ready), its output in a log."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "usermgmt.api.server", "--host", "127.0.0.1",
             "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip
    return LiveServer(process, port, log_path)


def wait_ready(server: LiveServer, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url + "/health/live", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server did not start:\n{server.log()}")


def assert_error(result, status: int, code: str) -> dict:
    assert result.status_code == status, result.text
    body = result.json
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, error
    assert error["message"]
    assert error["request_id"] == result.headers["X-Request-ID"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", error["timestamp"])
    return error


def mail_token(services, to_addr: str, template: str) -> str:
    """The raw token of the newest mail of ``template`` to ``to_addr`` (test-only read)."""
    from sqlalchemy import select

    from usermgmt.core.models import MailMessage

    with services.db.read() as s:
        rows = s.execute(
            select(MailMessage)
            .where(MailMessage.to_addr == to_addr, MailMessage.template == template)
            .order_by(MailMessage.created_at.desc())
        ).scalars()
        return next(iter(rows)).context["token"]
