"""Fixtures for the account pages: a Falcon test client over real services (both
databases), and for the browser tests a live server per database and one Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ci import missing

from usermgmt.core.config import load_settings
from usermgmt.core.services import build_services

from ..api_helpers import Api, LiveServer, free_port, launch_server, wait_ready
from .page_helpers import PageClient


@pytest.fixture
def make_pages(make_services):
    def make(**overrides) -> PageClient:
        overrides.setdefault("rate_limit_login", "off")
        overrides.setdefault("rate_limit_auth", "off")
        return PageClient(Api(make_services(**overrides)))

    return make


@pytest.fixture
def pages(make_pages) -> PageClient:
    return make_pages()


# ---- a live `usermgmt serve` per database, and one Chromium ------------------------

CHROMIUM = Path(os.environ.get("USERMGMT_TEST_CHROMIUM", "/usr/bin/chromium"))
# Headless, and nothing of its own on the network: the tests check that every request
# the browser makes goes to the server on loopback.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
KEEP_ENV = {"USERMGMT_TEST_POSTGRES_URL", "USERMGMT_PG_BIN", "USERMGMT_REDIS_SERVER"}


@dataclass
class Site:
    server: LiveServer
    services: object
    mail_dir: Path

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module", params=BACKENDS)
def site(request, tmp_path_factory) -> Iterator[Site]:
    """`python -m usermgmt.api.server` on loopback over a fresh database, mail as files."""
    folder = tmp_path_factory.mktemp("pages-site")
    if request.param == "sqlite":
        path = folder / "usermgmt.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database = contextlib.nullcontext(f"sqlite:///{path}")
    else:
        database = request.getfixturevalue("pg_databases").new()
    with database as url:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("USERMGMT_")}
        env.update({k: os.environ[k] for k in KEEP_ENV if k in os.environ})
        env.update(
            USERMGMT_DATABASE_URL=url,
            USERMGMT_DATA_DIR=str(folder / "data"),
            USERMGMT_MAIL_DIR=str(folder / "mail"),
            USERMGMT_PUBLIC_URL=f"http://127.0.0.1:{port}",
            USERMGMT_BCRYPT_ROUNDS="4",
            USERMGMT_RATE_LIMIT_LOGIN="off",
            USERMGMT_RATE_LIMIT_AUTH="off",
        )
        log_path = folder / "server.log"
        server = launch_server(port, env, log_path)
        # The test's own services (seeding users, an operator's invitation) share the
        # server's database and links.
        services = build_services(
            load_settings(
                database_url=url,
                bcrypt_rounds=4,
                mail_dir=str(folder / "mail"),
                public_url=env["USERMGMT_PUBLIC_URL"],
            )
        )
        try:
            wait_ready(server)
            yield Site(server, services, folder / "mail")
        finally:
            services.close()
            try:
                server.stop(timeout=60)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium (Debian's) for all the browser tests."""
    if not CHROMIUM.exists():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium): browser tests cannot run")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Tab:
    page: object
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser, site) -> Iterator[Tab]:
    """A fresh browser context with JavaScript off; every request it makes is recorded."""
    context = browser.new_context(java_script_enabled=False)
    recorded = Tab(context.new_page())
    context.on("request", lambda request: recorded.requests.append(request.url))
    yield recorded
    context.close()
