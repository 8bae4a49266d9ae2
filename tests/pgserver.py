"""PostgreSQL for the test suite: the one place that starts, restarts and stops
clusters and hands out databases. Registered as a pytest plugin by
tests/conftest.py, so every test gets PostgreSQL through these fixtures:

- ``pg_admin_url`` (session): the server every test shares, a throwaway cluster
  started once, or ``USERMGMT_TEST_POSTGRES_URL`` (see :func:`external_admin_url`);
- ``pg_template`` (session): a migrated database that tests clone;
- ``pg_databases`` (session): hands out databases on that server
  (``with pg_databases.new() as url: ...``), migrated or empty;
- ``pg_database``: one fresh migrated database for a test;
- ``restartable_pg``: a private cluster of the test's own, which it may
  ``pause()`` and ``resume()`` (the shared one must stay up).

A cluster is a fresh ``initdb`` in a temporary directory, listening on a free
loopback port with trust authentication and durability switched off for speed;
``USERMGMT_PG_BIN`` chooses the server binaries (see :func:`find_pg_bin`).
Without them a test that needs PostgreSQL is skipped with the reason, or fails
under ``CI=true`` (tests/ci.py), so a green CI means both databases passed.

The benchmarks use :class:`PostgresCluster` too. Run ``python tests/pgserver.py``
for a smoke test.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci import missing

__all__ = [
    "DatabaseFactory",
    "PostgresCluster",
    "PostgresStartError",
    "create_database",
    "drop_database",
    "external_admin_url",
    "find_pg_bin",
    "url_for",
]

PG_BIN_ENV = "USERMGMT_PG_BIN"
EXTERNAL_URL_ENV = "USERMGMT_TEST_POSTGRES_URL"

# The server refuses to run as root, so as root everything runs as this user.
SERVER_OS_USER = "postgres"
SUPERUSER = "postgres"

# Durability is pointless for a cluster that is deleted after the test run.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class PostgresStartError(RuntimeError):
    """The cluster could not be created or started; the message has the log tail."""


def external_admin_url() -> str | None:
    """Return ``USERMGMT_TEST_POSTGRES_URL`` if set: use that server, start none.

    The URL must be an SQLAlchemy URL of a role allowed to create databases,
    e.g. ``postgresql+psycopg://postgres:secret@db:5432/postgres``.
    """
    return os.environ.get(EXTERNAL_URL_ENV) or None


def find_pg_bin() -> Path | None:
    """Return the directory holding ``initdb``/``pg_ctl``, or None if there is none.

    ``USERMGMT_PG_BIN`` wins if set (it is returned even if it looks wrong, so
    that a typo fails loudly later instead of silently using another version);
    otherwise the newest ``/usr/lib/postgresql/<major>/bin`` (the Debian layout).
    """
    if override := os.environ.get(PG_BIN_ENV):
        return Path(override)

    def major(path: Path) -> tuple[int, str]:
        name = path.parent.parent.name
        return (int(name), name) if name.isdigit() else (-1, name)

    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    return max(candidates, key=major) if candidates else None


def url_for(admin_url: str, dbname: str) -> str:
    """Return ``admin_url`` with its database replaced by ``dbname``."""
    parts = urllib.parse.urlsplit(admin_url)
    return parts._replace(path="/" + urllib.parse.quote(dbname, safe="")).geturl()


def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    """Create database ``name``, optionally as a copy of ``template``.

    Copying a template (e.g. one that already has the migrations applied) is
    much faster than migrating each database, but PostgreSQL refuses to copy a
    database that has open connections, so dispose of any engine/pool on the
    template first.
    """
    from psycopg import sql

    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with _admin_connection(admin_url) as conn:
        conn.execute(query)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, terminating any open connections."""
    from psycopg import sql

    query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with _admin_connection(admin_url) as conn:
        conn.execute(query)


def _libpq_url(sqlalchemy_url: str) -> str:
    """Turn ``postgresql+psycopg://...`` into a ``postgresql://...`` libpq URI."""
    scheme, sep, rest = sqlalchemy_url.partition("://")
    return scheme.split("+", 1)[0] + sep + rest


def _admin_connection(admin_url: str):
    import psycopg

    return psycopg.connect(_libpq_url(admin_url), autocommit=True, connect_timeout=10)


def _free_port() -> int:
    """Ask the kernel for a free loopback port (racy, hence the retry in start())."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    """A private PostgreSQL cluster in a temporary directory.

    Usage::

        with PostgresCluster() as cluster:
            create_database(cluster.admin_url, "t1")
            engine = create_engine(url_for(cluster.admin_url, "t1"))

    ``pause()`` stops the server and ``resume()`` starts it again on the same
    data and port, which is what clients see when the database restarts.

    The postmaster is started directly as our child process rather than
    daemonised by ``pg_ctl start``, so that an early exit (bad setting, port
    taken) is noticed at once with its log, and the process is reaped by us
    instead of lingering as a zombie until PID 1 gets round to it.

    ``stop()`` is also registered with :mod:`atexit`, so an aborted test run
    does not leave a server behind (a SIGKILL of the test process still can).
    """

    def __init__(
        self,
        bin_dir: Path | None = None,
        start_timeout: float = 60.0,
        settings: dict[str, str] | None = None,
    ):
        self.bin_dir = Path(bin_dir) if bin_dir else find_pg_bin()
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.admin_url: str | None = None
        self.base_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._run_as = SERVER_OS_USER if os.geteuid() == 0 else None

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def log_file(self) -> Path:
        return self._base() / "server.log"

    def _base(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("cluster is not running")
        return self.base_dir

    def start(self) -> PostgresCluster:
        """initdb a fresh cluster, start it and wait until it accepts connections."""
        if self.base_dir is not None:
            raise RuntimeError("cluster already started")
        if self.bin_dir is None or not (self.bin_dir / "initdb").exists():
            raise PostgresStartError(
                f"PostgreSQL server binaries not found (bin dir: {self.bin_dir}); "
                f"install the 'postgresql' package or set {PG_BIN_ENV}"
            )

        self.base_dir = Path(tempfile.mkdtemp(prefix="usermgmt-pg-"))
        atexit.register(self.stop)
        try:
            if self._run_as:
                self._chown_to_server_user(self.base_dir)
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill the server (``-m immediate``: no checkpoint) and delete its files.

        Safe to call more than once, and on a cluster that failed to start.
        """
        base_dir, self.base_dir = self.base_dir, None
        if base_dir is None:
            return
        atexit.unregister(self.stop)
        if self._process is not None:
            self._stop_process(base_dir)
        shutil.rmtree(base_dir, ignore_errors=True)
        self.port = self.admin_url = None

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _initdb(self) -> None:
        # C.UTF-8 rather than C: in the C locale pg_trgm treats every non-ASCII
        # character as a word separator, so trigram search on "José" would
        # behave differently from a real deployment.
        result = subprocess.run(
            self._argv(
                "initdb",
                *("-D", self.data_dir, "-U", SUPERUSER, "--auth=trust"),
                *("--encoding=UTF8", "--locale=C.UTF-8"),
                *("--no-sync", "--no-instructions"),
            ),
            **self._subprocess_kwargs(self._base()),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0:
            raise PostgresStartError(f"initdb failed:\n{result.stdout}")

    def pause(self) -> None:
        """Stop the server, keeping its data and port for :meth:`resume`.

        A fast shutdown rather than an immediate one: the cluster runs with
        ``synchronous_commit=off``, and a restart must not lose the last commits.
        """
        if self._process is None:
            raise RuntimeError("cluster is not running")
        process, self._process = self._process, None
        subprocess.run(
            self._argv("pg_ctl", "stop", "-D", self.data_dir, "-m", "fast", "-w"),
            **self._subprocess_kwargs(self._base()),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        process.wait(timeout=60)

    def resume(self) -> None:
        """Start the paused server again on its data and port."""
        if self._process is not None or self.port is None:
            raise RuntimeError("cluster is not paused")
        self._spawn()
        if not self._wait_until_accepting():
            self._process = None
            raise PostgresStartError(
                "PostgreSQL server exited while resuming\n"
                f"--- server log tail ({self.log_file}) ---\n{self._log_tail()}"
            )

    def _spawn(self) -> None:
        settings = {**self.settings, "unix_socket_directories": self._base()}
        options = [f"--{key}={value}" for key, value in settings.items()]
        with open(self.log_file, "ab") as log:
            self._process = subprocess.Popen(
                self._argv("postgres", "-D", self.data_dir, "-p", self.port, *options),
                **self._subprocess_kwargs(self._base()),
                stdout=log,
                stderr=subprocess.STDOUT,
                # Keep the terminal's Ctrl-C away from the server: teardown
                # (stop()) decides when it goes.
                start_new_session=True,
            )

    def _start_server(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
            self.admin_url = f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
            self._spawn()
            if self._wait_until_accepting():
                return
            # The server exited. Another process may have grabbed the port
            # between _free_port() and the bind; only that is worth a retry.
            self._process = None
            if attempt < attempts and "already in use" in self._log_tail():
                continue
            raise PostgresStartError(
                "PostgreSQL server exited during startup\n"
                f"--- server log tail ({self.log_file}) ---\n{self._log_tail()}"
            )

    def _wait_until_accepting(self) -> bool:
        """Poll until a connection succeeds; False if the server process exited."""
        import psycopg

        assert self._process is not None and self.admin_url is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process.poll() is not None:
                return False
            try:
                with psycopg.connect(_libpq_url(self.admin_url), connect_timeout=5):
                    return True
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresStartError(
                        f"server on port {self.port} not accepting connections "
                        f"after {self.start_timeout:.0f}s: {exc}\n"
                        f"--- server log tail ({self.log_file}) ---\n"
                        f"{self._log_tail()}"
                    ) from exc
            time.sleep(0.05)

    def _stop_process(self, base_dir: Path) -> None:
        process, self._process = self._process, None
        assert process is not None
        if process.poll() is None:
            subprocess.run(
                self._argv("pg_ctl", "stop", "-D", base_dir / "data", "-m", "immediate", "-w"),
                **self._subprocess_kwargs(base_dir),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # pg_ctl could not stop it: kill the whole session (runuser,
            # postmaster and its backends share it thanks to start_new_session).
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def _argv(self, program: str, *args: object) -> list[str]:
        """Command line for a server binary, run as ``postgres`` when we are root."""
        argv = [str(self.bin_dir / program), *map(str, args)]
        if self._run_as:
            argv = ["runuser", "-u", self._run_as, "--", *argv]
        return argv

    @staticmethod
    def _subprocess_kwargs(cwd: Path) -> dict:
        # Stray PG* variables (PGDATA, PGPORT, PGHOST, ...) must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        # cwd: the caller's (e.g. /root) may be unreadable for the postgres user.
        return {"cwd": cwd, "env": env, "stdin": subprocess.DEVNULL}

    def _chown_to_server_user(self, path: Path) -> None:
        try:
            user = pwd.getpwnam(self._run_as)
        except KeyError:
            raise PostgresStartError(
                f"running as root but OS user {self._run_as!r} does not exist; "
                "PostgreSQL refuses to run as root"
            ) from None
        os.chown(path, user.pw_uid, user.pw_gid)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError as exc:
            return f"(no server log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


class DatabaseFactory:
    """Hands out databases on one server: fresh clones of the migrated template, or empty."""

    def __init__(self, admin_url: str, template: str) -> None:
        self.admin_url = admin_url
        self.template = template

    @contextlib.contextmanager
    def new(self, *, migrated: bool = True, prefix: str = "t") -> Iterator[str]:
        """A new database's URL, dropped on leaving (with any connection left open)."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        create_database(self.admin_url, name, template=self.template if migrated else None)
        try:
            yield url_for(self.admin_url, name)
        finally:
            drop_database(self.admin_url, name)


def _need_server_binaries() -> Path:
    """The server binaries' directory; without one the test is skipped, or fails in CI.

    A ``USERMGMT_PG_BIN`` that names no binaries is not "missing": starting the
    cluster then fails, naming the directory.
    """
    bin_dir = find_pg_bin()
    if bin_dir is None:
        missing(
            "PostgreSQL server binaries not found (install the postgresql package "
            f"or set {PG_BIN_ENV}): PostgreSQL tests cannot run"
        )
    return bin_dir


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """The PostgreSQL server the tests share: USERMGMT_TEST_POSTGRES_URL, or a cluster."""
    external = external_admin_url()
    if external:
        yield external
        return
    with PostgresCluster(_need_server_binaries()) as cluster:
        yield cluster.admin_url


@pytest.fixture(scope="session")
def pg_template(pg_admin_url) -> Iterator[str]:
    """A migrated database that each test clones (CREATE DATABASE … TEMPLATE)."""
    from usermgmt.core import migrate
    from usermgmt.core.db import Database

    name = f"usermgmt_tpl_{uuid.uuid4().hex[:8]}"
    create_database(pg_admin_url, name)
    db = Database(url_for(pg_admin_url, name))
    try:
        migrate.upgrade(db)
    finally:
        db.dispose()  # PostgreSQL copies no database with open connections
    yield name
    drop_database(pg_admin_url, name)


@pytest.fixture(scope="session")
def pg_databases(pg_admin_url, pg_template) -> DatabaseFactory:
    return DatabaseFactory(pg_admin_url, pg_template)


@pytest.fixture
def pg_database(pg_databases) -> Iterator[str]:
    """The URL of a fresh migrated PostgreSQL database, dropped after the test."""
    with pg_databases.new() as url:
        yield url


@pytest.fixture
def restartable_pg() -> Iterator[PostgresCluster]:
    """A cluster of the test's own, to ``pause()`` and ``resume()`` under running code."""
    with PostgresCluster(_need_server_binaries()) as cluster:
        yield cluster


def _smoke() -> None:
    import psycopg

    t0 = time.monotonic()
    with PostgresCluster() as cluster:
        t_started = time.monotonic()
        print(f"started in {t_started - t0:.2f}s: {cluster.admin_url}")
        create_database(cluster.admin_url, "smoke")
        url = url_for(cluster.admin_url, "smoke")
        with psycopg.connect(_libpq_url(url)) as conn:
            print(conn.execute("SELECT version()").fetchone()[0])
        drop_database(cluster.admin_url, "smoke")
        t_stop = time.monotonic()
    print(f"stopped in {time.monotonic() - t_stop:.2f}s")


if __name__ == "__main__":
    _smoke()
