"""`usermgmt serve --port 0` and a port that is taken, through a real `usermgmt serve`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from .test_server import call

BANNER = re.compile(r"usermgmt API serving on http://127\.0\.0\.1:(\d+) ")
IN_USE = (
    "error: PORT_IN_USE: 127.0.0.1:{port} is already in use; "
    "pick another with --port (or --port 0 for any free port)"
)


def usermgmt_serve(tmp_path, *args: str) -> tuple[subprocess.Popen, object]:
    """Start `usermgmt serve ARGS` on a fresh SQLite database; (process, log path)."""
    log_path = tmp_path / f"serve-{time.monotonic_ns()}.log"
    env = {
        **os.environ,
        "USERMGMT_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "USERMGMT_RATE_LIMIT_LOGIN": "off",
        "USERMGMT_RATE_LIMIT_AUTH": "off",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "usermgmt", "serve", "--host", "127.0.0.1", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return process, log_path


def wait_for_port(process: subprocess.Popen, log_path, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = BANNER.search(log_path.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no start-up line:\n{log_path.read_text(errors='replace')}")


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def serve(tmp_path):
    started: list[subprocess.Popen] = []

    def start(*args: str):
        process, log_path = usermgmt_serve(tmp_path, *args)
        started.append(process)
        return process, log_path

    yield start
    for process in started:
        if process.poll() is None:
            stop(process)


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_0_binds_a_free_port_and_says_which(serve, workers):
    process, log_path = serve("--port", "0", "--workers", workers)
    port = wait_for_port(process, log_path)
    assert port != 0
    status, _headers, body = call(f"http://127.0.0.1:{port}/health")
    assert status == 200 and body["status"] == "ok"
    started = [
        json.loads(line)
        for line in log_path.read_text().splitlines()
        if line.startswith("{") and '"server started"' in line
    ]
    assert started and {entry["url"] for entry in started} == {f"http://127.0.0.1:{port}"}
    assert stop(process) == 0


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_port_says_so_and_how_to_pick_another(serve, workers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process, log_path = serve("--port", str(port), "--workers", workers)
        assert process.wait(timeout=60) == 1
    output = log_path.read_text()
    assert IN_USE.format(port=port) in output.splitlines()
    assert "VALIDATION_ERROR" not in output and "Traceback" not in output


@pytest.mark.slow
def test_a_second_server_with_workers_cannot_share_the_first_ones_port(serve):
    """SO_REUSEPORT (each worker its own socket) would let the same user's second server
    join the first one's port and take half its connections."""
    first, first_log = serve("--port", "0", "--workers", "2")
    port = wait_for_port(first, first_log)
    second, second_log = serve("--port", str(port), "--workers", "2")
    assert second.wait(timeout=60) == 1
    assert IN_USE.format(port=port) in second_log.read_text().splitlines()
    assert call(f"http://127.0.0.1:{port}/health")[0] == 200  # the first serves on
    assert stop(first) == 0
