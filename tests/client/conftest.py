"""Remote mode: the CLI against a live `usermgmt serve` on loopback, on both databases.

One server per module and database (``served``), seeded with an admin and a
moderator; each test gets its own contexts file (``XDG_CONFIG_HOME``) and logs
in through the real ``usermgmt login --password-stdin``. ``run`` is the CLI in
one ``mode`` (embedded on the server's database, or remote through the server),
so a behaviour test written once checks both.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from api.api_helpers import LiveServer, free_port, launch_server, wait_ready
from cli.conftest import Run, _invoke
from typer.testing import CliRunner

from usermgmt.cli.app import PROG_NAME, app
from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.services import build_services

PASSWORD = "Corr3ct-Horse-Battery"
JWT_SECRET = "remote-tests-secret-0123456789abcdef"
KEEP_ENV = {"USERMGMT_TEST_POSTGRES_URL", "USERMGMT_PG_BIN", "USERMGMT_REDIS_SERVER"}
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Served:
    server: LiveServer
    database_url: str
    admin_id: str
    admin_email: str
    moderator_email: str

    @property
    def url(self) -> str:
        return self.server.url

    def services(self):
        return build_services(load_settings(database_url=self.database_url), ensure_schema=False)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("USERMGMT_") or k in KEEP_ENV}
    return {**env, **extra}


def start_server(database_url: str, log_dir: Path, **env: str) -> LiveServer:
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    environment = clean_env(
        USERMGMT_DATABASE_URL=database_url,
        USERMGMT_RATE_LIMIT_LOGIN="off",
        USERMGMT_RATE_LIMIT_AUTH="off",
        USERMGMT_BCRYPT_ROUNDS="4",
        USERMGMT_JWT_SECRET=JWT_SECRET,
        # No grace for a re-presented refresh token: a client that spent one twice
        # (two processes refreshing without the contexts file's lock) is logged out.
        USERMGMT_REFRESH_REUSE_GRACE="0",
        USERMGMT_DATA_DIR=str(log_dir / "data"),
        **env,
    )
    server = launch_server(port, environment, log_path)
    wait_ready(server)
    return server


def seed(database_url: str) -> tuple[str, str, str]:
    svc = build_services(load_settings(database_url=database_url, bcrypt_rounds=4))
    operator, ctx = Actor.operator("cli", "tester"), RequestContext(request_id="seed-remote")
    try:
        admin = svc.users.create(
            operator,
            ctx,
            {"email": "root@example.com", "username": "root", "password": PASSWORD,
             "roles": ["admin"]},
        )  # fmt: skip
        svc.users.create(
            operator,
            ctx,
            {"email": "mod@example.com", "password": PASSWORD, "roles": ["moderator"]},
        )
    finally:
        svc.close()
    return str(admin.id), admin.email, "mod@example.com"


@pytest.fixture(scope="module", params=DATABASES)
def served(request, tmp_path_factory) -> Served:
    directory = tmp_path_factory.mktemp("served")
    if request.param == "sqlite":
        path = directory / "usermgmt.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database_url = f"sqlite:///{path}"
        cleanup = None
    else:
        cleanup = request.getfixturevalue("pg_databases").new()
        database_url = cleanup.__enter__()
    admin_id, admin_email, moderator_email = seed(database_url)
    server = start_server(database_url, directory)
    yield Served(server, database_url, admin_id, admin_email, moderator_email)
    server.stop(timeout=60)
    if cleanup is not None:
        cleanup.__exit__(None, None, None)


@pytest.fixture
def config_home(monkeypatch, tmp_path) -> Path:
    """This test's own contexts file: $XDG_CONFIG_HOME/usermgmt/contexts.json."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def invoke(*args: str, input: str | bytes | None = None) -> Run:
    result = CliRunner().invoke(app, list(args), input=input, prog_name=PROG_NAME)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def login(served: Served, email: str, context: str) -> Run:
    return invoke(
        "login", "--server", served.url, "--context", context, "--email", email,
        "--password-stdin", input=PASSWORD + "\n",
    )  # fmt: skip


@pytest.fixture
def as_admin(served, config_home):
    """The CLI through the server, logged in as the admin (context "admin")."""
    result = login(served, served.admin_email, "admin")
    assert result.exit_code == 0, result.stderr

    def run(*args: str, input: str | bytes | None = None) -> Run:
        return invoke(*args, input=input)

    return run


@pytest.fixture
def as_moderator(served, config_home):
    result = login(served, served.moderator_email, "mod")
    assert result.exit_code == 0, result.stderr

    def run(*args: str, input: str | bytes | None = None) -> Run:
        return invoke("--context", "mod", *args, input=input)

    return run


@pytest.fixture
def embedded(served):
    """The CLI on the server's own database, as the local operator."""

    def run(*args: str, input: str | bytes | None = None) -> Run:
        return _invoke("--database-url", served.database_url, *args, input=input)

    return run


@pytest.fixture(params=["embedded", "remote"])
def mode(request) -> str:
    return request.param


@pytest.fixture
def run(mode, served, request):
    """The CLI in ``mode``: the same commands must behave the same in both."""
    return request.getfixturevalue("embedded" if mode == "embedded" else "as_admin")


def unique_email(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
