"""The programs a deployment puts beside usermgmt, run for real on loopback.

Each runs from its Debian package's binary in a temporary directory, as our
child process (never daemonised), on a free port, and is stopped by the test
that started it. Without the binary a test is skipped with the reason, or fails
under ``CI=true`` (tests/ci.py); ``make test`` installs them with apt-get.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ci import missing

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# PgBouncer and nginx's workers refuse root, or should not have it: as root they run as this user.
UNPRIVILEGED_USER = "postgres"


def need_binary(path: str, package: str) -> str:
    """``path`` (absolute, or a name on PATH) if it is there; otherwise skip (fail in CI)."""
    found = path if os.path.isabs(path) and os.access(path, os.X_OK) else shutil.which(path)
    if not found:
        missing(f"{path} not found (install Debian's {package} package; `make test` does)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited early ({process.returncode}):\n{tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"not listening on {port} after {timeout}s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _Component:
    """A server in a temporary directory of its own, run as an unprivileged user when root."""

    prefix = "usermgmt-component-"

    def __init__(self) -> None:
        self.base_dir = Path(tempfile.mkdtemp(prefix=self.prefix))
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.run_as = UNPRIVILEGED_USER if os.geteuid() == 0 else None
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            os.chown(self.base_dir, user.pw_uid, user.pw_gid)

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    def _as_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *argv] if self.run_as else argv

    def _launch(self, argv: list[str]) -> None:
        argv = self._as_user(argv)
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if self.run_as:
            os.chown(self.log_file, pwd.getpwnam(self.run_as).pw_uid, -1)
        wait_for_port(self.port, self.process, self.log_file)

    def close(self) -> None:
        stop(self.process)
        self.process = None
        shutil.rmtree(self.base_dir, ignore_errors=True)


class PgBouncer(_Component):
    """PgBouncer in ``pool_mode`` (transaction, as production runs it) before ``pg_url``'s
    server, with ``pool_size`` server connections per database and user."""

    prefix = "usermgmt-pgbouncer-"

    def __init__(self, binary: str, pg_url: str, *, pool_size: int = 3) -> None:
        super().__init__()
        from sqlalchemy.engine import make_url

        upstream = make_url(pg_url)
        self.user = upstream.username
        config = self.base_dir / "pgbouncer.ini"
        (self.base_dir / "userlist.txt").write_text(f'"{self.user}" ""\n')
        config.write_text(
            "[databases]\n"
            f"* = host={upstream.host} port={upstream.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.base_dir / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\nreserve_pool_size = 0\n"
            "max_client_conn = 500\n"
            f"pidfile = {self.base_dir / 'pgbouncer.pid'}\n"
        )
        self._launch([binary, str(config)])

    def url_for(self, database_url: str) -> str:
        """``database_url`` (a database on the upstream server) through this PgBouncer."""
        from sqlalchemy.engine import make_url

        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)


def substitute(text: str, pattern: str, replacement: str, flags: int = 0) -> str:
    """``re.subn`` that insists on exactly one match: the example may not drift from the test."""
    result, count = re.subn(pattern, replacement, text, flags=flags)
    if count != 1:
        raise AssertionError(f"{pattern!r} matched {count} times in the example")
    return result


class Nginx(_Component):
    """nginx serving deploy/nginx/usermgmt.conf on loopback, in front of ``upstream_port``.

    The site is the shipped example with only what a test machine must change:
    plain HTTP on a free port instead of TLS on 443 (and no redirect from 80),
    the live server as the upstream, logs in the temporary directory, and
    ``proxy_bind`` to ``bind``, so the API sees nginx at an address of its own
    (direct requests come from 127.0.0.1).
    """

    prefix = "usermgmt-nginx-"

    def __init__(self, binary: str, upstream_port: int, *, bind: str = "127.0.0.2") -> None:
        super().__init__()
        base = self.base_dir
        site = (DEPLOY / "nginx" / "usermgmt.conf").read_text()
        site = substitute(site, r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{upstream_port};")
        site = substitute(site, r"\nserver \{\n    listen 80;.*?\n\}\n", "\n", re.S)
        site = substitute(site, r"listen 443 ssl http2;", f"listen 127.0.0.1:{self.port};")
        site = substitute(site, r"\n *listen \[::\]:443 ssl http2;", "")
        site = re.sub(r"\n *ssl_\w+ .*;", "", site)
        site = substitute(site, r"/var/log/nginx/usermgmt\.access\.log", str(self.access_log))
        site = substitute(
            site,
            r"proxy_pass http://usermgmt;",
            f"proxy_pass http://usermgmt;\n proxy_bind {bind};",
        )
        (base / "usermgmt.conf").write_text(site)
        temp = base / "temp"
        temp.mkdir()
        if self.run_as:
            os.chown(temp, pwd.getpwnam(self.run_as).pw_uid, -1)
        temp_paths = "".join(
            f"    {kind}_temp_path {temp / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (base / "nginx.conf").write_text(
            "worker_processes 1;\n"
            f"pid {base / 'nginx.pid'};\n"
            f"error_log {self.log_file} info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"{temp_paths}"
            f"    include {base / 'usermgmt.conf'};\n"
            "}\n"
        )
        self.argv = [
            binary,
            "-p",
            str(base),
            "-c",
            str(base / "nginx.conf"),
            "-e",
            str(self.log_file),
        ]
        check = subprocess.run(
            self._as_user([*self.argv, "-t"]), capture_output=True, text=True, cwd=base, check=False
        )
        if check.returncode != 0:
            raise AssertionError(f"nginx -t refused the site:\n{check.stderr}")
        self._launch([*self.argv, "-g", "daemon off;"])

    @property
    def access_log(self) -> Path:
        return self.base_dir / "access.log"
