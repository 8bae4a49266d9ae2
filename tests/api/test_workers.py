"""`usermgmt serve --workers N`: forked server processes on one socket (a live server)."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from usermgmt.api.ratelimit import counts_per_process
from usermgmt.core.config import load_settings

from .test_server import call, sigterm_during_a_login

pytestmark = pytest.mark.slow


def workers_of(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def served_by(log: str, route: str) -> dict[int, int]:
    """How many requests to ``route`` each worker served, from the access log."""
    counts: dict[int, int] = {}
    for line in log.splitlines():
        if '"usermgmt.api.access"' in line and f'"route": "{route}"' in line:
            worker = json.loads(line)["worker"]
            counts[worker] = counts.get(worker, 0) + 1
    return counts


def eventually(check, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def health_count(url: str) -> float:
    _status, _headers, text = call(url + "/metrics")
    match = re.search(
        r'^usermgmt_http_requests_total\{method="GET",route="/health",status="200"\} (\S+)$',
        text,
        re.M,
    )
    return float(match.group(1)) if match else 0.0


def test_workers_share_the_port_and_the_metrics_and_are_replaced(start_server, tmp_path):
    server = start_server(f"sqlite:///{tmp_path / 'w.db'}", args=("--workers", "2"))
    assert eventually(lambda: "usermgmt API serving on" in server.log())
    log = server.log()
    assert log.count("usermgmt API serving on") == 1
    assert "workers: 2, threads: 2 each" in log
    assert log.count("mail deliverer started") == 1  # worker 1's
    children = workers_of(server.process.pid)
    assert len(children) == 2

    # Each call is a new connection, and the kernel picks the worker: call until
    # both have served (bounded), so that the sums below cover two processes.
    calls = 0
    while len(served_by(server.log(), "/health")) < 2 and calls < 500:
        assert call(server.url + "/health")[0] == 200
        calls += 1
    assert len(served_by(server.log(), "/health")) == 2
    # One worker dies; its replacement comes up and the counts it had are kept.
    os.kill(children[0], signal.SIGKILL)
    assert eventually(
        lambda: "starting a new one" in server.log() and len(workers_of(server.process.pid)) == 2
    )
    assert children[0] not in workers_of(server.process.pid)
    for _ in range(5):
        assert call(server.url + "/health")[0] == 200
    calls += 5
    # Whichever worker answers /metrics reports the sum over all of them, the dead
    # one included.
    counts = {health_count(server.url) for _ in range(6)}
    assert counts == {float(calls)}


def alive(pid: int) -> bool:
    """``pid`` runs (a zombie nobody reaped yet does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_workers_stop_when_their_supervisor_is_killed(start_server, tmp_path):
    """A parent killed outright (SIGKILL, the OOM killer) leaves no worker serving on."""
    server = start_server(f"sqlite:///{tmp_path / 'orphans.db'}", args=("--workers", "2"))
    assert eventually(lambda: "usermgmt API serving on" in server.log())
    children = workers_of(server.process.pid)
    assert len(children) == 2
    server.process.kill()
    server.process.wait()
    assert eventually(lambda: not any(alive(pid) for pid in children))
    log = server.log()
    assert log.count("supervising process") == 2
    assert log.count('"message": "server stopped", "worker"') == 2  # each drained and stopped


def test_sigterm_drains_every_worker(start_server, tmp_path):
    server = start_server(
        f"sqlite:///{tmp_path / 'drain.db'}",
        args=("--workers", "2"),
        env={"USERMGMT_BCRYPT_ROUNDS": "14"},
    )
    assert eventually(lambda: "usermgmt API serving on" in server.log())
    children = workers_of(server.process.pid)
    status, _headers, body = sigterm_during_a_login(server, exit_within=90)
    assert status == 401 and body["error"]["code"] == "INVALID_CREDENTIALS"
    log = server.log()
    assert log.count('"message": "server stopped", "worker"') == 2
    assert log.count("usermgmt API stopped") == 1
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)


def test_in_process_rate_limits_refuse_several_workers(start_server, tmp_path):
    server = start_server(
        f"sqlite:///{tmp_path / 'rl.db'}",
        wait=False,
        args=("--workers", "2"),
        env={"USERMGMT_RATE_LIMIT_LOGIN": "10/minute"},
    )
    assert server.process.wait(timeout=60) == 2
    assert "USERMGMT_RATE_LIMIT_STORAGE=database" in server.log()
    assert "Traceback" not in server.log()


def test_workers_refuse_a_schema_that_is_behind(start_server, tmp_path):
    from usermgmt.core import migrate
    from usermgmt.core.db import Database

    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    migrate.upgrade(db, "0001")
    db.dispose()
    server = start_server(url, wait=False, args=("--workers", "2"))
    assert server.process.wait(timeout=60) == 5
    assert "usermgmt db upgrade" in server.log()
    assert "usermgmt API serving" not in server.log()


@pytest.mark.parametrize(
    ("login", "auth", "storage", "per_process"),
    [
        ("10/minute", "5/minute", "memory://", True),
        ("off", "5/minute", "memory://", True),
        ("off", "off", "memory://", False),
        ("10/minute", "5/minute", "database", False),
        ("10/minute", "5/minute", "redis://localhost:6379", False),
    ],
)
def test_counts_per_process(login, auth, storage, per_process):
    settings = load_settings(
        database_url="sqlite://",
        rate_limit_login=login,
        rate_limit_auth=auth,
        rate_limit_storage=storage,
    )
    assert counts_per_process(settings) is per_process


def test_shared_metrics_skip_a_value_file_not_sized_yet(tmp_path, monkeypatch):
    """A worker's value file exists empty for a moment; a scrape then must not fail."""
    from prometheus_client import CollectorRegistry, generate_latest, values

    from usermgmt.api.metrics import SharedValues

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.get_value_class())
    from usermgmt.api.metrics import Metrics

    metrics = Metrics()
    metrics.observe("GET", "/health", 200, 0.001)
    (tmp_path / "counter_999999.db").write_bytes(b"")  # a worker that is starting
    registry = CollectorRegistry()
    registry.register(SharedValues(str(tmp_path)))
    text = generate_latest(registry).decode()
    assert 'usermgmt_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert metrics.render().decode() == text


def test_a_worker_that_cannot_start_stops_the_server_with_its_code(tmp_path):
    """The parent's start: a worker exiting before it is ready is the server's exit code."""
    from usermgmt.api.listen import bind_sockets
    from usermgmt.api.server import serve_process
    from usermgmt.api.workers import Supervisor

    # Nothing listens on port 1: each worker's services fail with exit code 5.
    settings = load_settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    sockets = bind_sockets("127.0.0.1", 0)
    serve = functools.partial(serve_process, settings, 1)
    supervisor = Supervisor(serve, count=2, sockets=sockets, metrics_dir=str(tmp_path))
    try:
        assert supervisor.start_all() == 5
    finally:
        supervisor.stop_all()
    assert supervisor.children == {}
    assert all(sock.fileno() == -1 for sock in sockets)  # closed
