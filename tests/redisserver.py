"""A throwaway redis-server for the tests of shared rate-limit stores.

The server runs from the Debian package's binary (``redis-server`` on PATH, or
``USERMGMT_REDIS_SERVER``) on a free loopback port, without persistence, in a
temporary directory. Tests stop it, start it again on the same port, and
stall it (SIGSTOP) to see what the API does meanwhile.

Registered as a pytest plugin by tests/conftest.py: tests take the
``redis_server`` fixture. Without the binary or the redis client a test is
skipped with the reason, or fails under ``CI=true`` (tests/ci.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci import missing

SERVER_ENV = "USERMGMT_REDIS_SERVER"


class RedisStartError(RuntimeError):
    """redis-server did not come up; the message has its log tail."""


def find_redis_server() -> str | None:
    """The redis-server binary: ``USERMGMT_REDIS_SERVER`` if set, else the one on PATH."""
    return os.environ.get(SERVER_ENV) or shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, binary: str, start_timeout: float = 20.0) -> None:
        self.binary = binary
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.base_dir = Path(tempfile.mkdtemp(prefix="usermgmt-redis-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._stalled = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "redis.log"

    def start(self, attempts: int = 3) -> RedisServer:
        """Start on a free port (or, after ``stop``, on the port it had)."""
        keep_port = self.port is not None
        for attempt in range(1, attempts + 1):
            if not keep_port:
                self.port = _free_port()
            self._spawn()
            if self._wait_until_answering():
                return self
            if attempt < attempts and not keep_port:  # the port was taken meanwhile
                continue
            raise RedisStartError(f"redis-server did not start:\n{self._log_tail()}")
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the server (it keeps nothing: no RDB, no AOF); the port is kept for start()."""
        process, self._process = self._process, None
        if process is None:
            return
        if self._stalled:
            process.send_signal(signal.SIGCONT)
            self._stalled = False
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stall(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, nothing is answered."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)
        self._stalled = True

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)
        self._stalled = False

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _spawn(self) -> None:
        argv = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
            *("--dir", str(self.base_dir), "--daemonize", "no"),
            *("--logfile", str(self.log_file)),
        ]
        self._process = subprocess.Popen(
            argv,
            cwd=self.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # the terminal's Ctrl-C is for the tests, not for it
        )

    def _wait_until_answering(self) -> bool:
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RedisStartError(f"redis-server not answering after {self.start_timeout}s")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, to stop, stall and start again."""
    binary = find_redis_server()
    if binary is None:
        missing("redis-server not found (install the redis-server package)")
    try:
        import redis  # noqa: F401
    except ImportError:
        missing("the redis client is not installed (pip install -e '.[dev,redis]')")
    server = RedisServer(binary).start()
    try:
        yield server
    finally:
        server.close()
