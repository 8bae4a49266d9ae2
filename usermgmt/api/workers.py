"""Several server processes on one port: ``usermgmt serve --workers N``.

Why processes: a Python process runs one thread at a time, and both database
drivers hand that lock over on every statement, so one process serves about
one core's worth of requests whatever its thread count (``default_threads``).
N worker processes use N cores.

How: the parent checks the configuration and the schema once, binds the
address and forks the workers. Each builds its own services (its own
connection pool) and serves with waitress. On Linux each worker listens on its
own SO_REUSEPORT socket and the kernel spreads new connections evenly over
them (the parent's socket only holds the address); elsewhere the workers share
the parent's listening socket. The parent only supervises:

- it prints the banner once every worker is ready; a worker that fails to
  start stops the server with that worker's exit code (schema behind: 5);
- a worker that dies later is logged and replaced (after a pause that grows
  while replacements keep dying, e.g. while the database is down);
- SIGTERM/SIGINT reach every worker, and each drains as a single server does;
  the parent exits 0 once all have stopped;
- a worker whose parent died without stopping it (SIGKILL, the OOM killer)
  notices within ``ORPHAN_CHECK`` seconds and drains and exits as on SIGTERM,
  instead of serving on, unsupervised, with the code it was started with.

What a worker keeps to itself: its connection pool, and the memo of verified
token signatures (sessions and users are read from the database on every
request). Metric values are written to a directory the workers share
(prometheus_client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` if set,
its ``*.db`` files of an earlier run removed at start, else a temporary
directory removed at exit), so ``/metrics`` from any worker
reports the sum of all. Rate-limit counters in ``memory://`` would be counted
per worker, so more than one worker needs a shared store (``database`` or
``redis://…``) while a rate limit is on; ``serve`` refuses otherwise.

POSIX only (fork).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from usermgmt.api.listen import ListenError, bind_sockets, display_address, own_listeners
from usermgmt.api.process import (
    DRAIN_SECONDS,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    STOP_SIGNALS,
    Worker,
    database_note,
    open_services,
    print_banner,
    stop_on_signals,
)

READY_TIMEOUT = 120.0  # seconds for a worker to build its services and start serving
RESTART_DELAY = (1.0, 30.0)  # first and longest pause before replacing a dead worker
STOP_GRACE = 15.0  # seconds beyond a worker's own drain before it is killed
EXIT_CRASH = 70  # a worker that raised instead of returning an exit code
ORPHAN_CHECK = 1.0  # seconds between a worker's checks that its parent still lives

log = logging.getLogger("usermgmt.api.server")

# How one worker serves: waitress's ``listen`` arguments and its Worker; its exit code.
ServeWorker = Callable[[dict, Worker], int]


# Linux spreads new connections evenly over the listening sockets of a SO_REUSEPORT
# group; with one shared socket the worker that wakes first takes them, and
# keep-alive clients can all end up on one worker. Elsewhere REUSEPORT does not
# balance, so the socket is shared.
BALANCED = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def use_shared_metrics() -> None:
    """Make prometheus_client keep values in PROMETHEUS_MULTIPROC_DIR from now on.

    It picks its value store when first imported; this process may have imported
    it before the directory was set, so the choice is made again here, before
    the worker creates its metrics.
    """
    import prometheus_client.values as values

    values.ValueClass = values.get_value_class()


def stop_when_orphaned(parent: int, every: float = ORPHAN_CHECK) -> threading.Thread:
    """In a worker: SIGTERM itself (drain, then exit) once ``parent`` is no longer its parent.

    A parent that dies without stopping its workers leaves them to the init
    process; polling ``getppid`` notices that on every POSIX system.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        log.warning("the supervising process %d is gone; this worker stops", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=watch, name="usermgmt-orphan-check", daemon=True)
    watcher.start()
    return watcher


class Supervisor:
    """The parent of the workers: start them, replace the ones that die, stop them all."""

    def __init__(
        self,
        serve: ServeWorker,
        count: int,
        sockets: list[socket.socket],
        metrics_dir: str,
        *,
        balanced: bool = False,
        stop: threading.Event | None = None,
    ):
        self.serve = serve
        self.count = count
        # Listening and shared by the workers, or (balanced) only reserving the
        # address while each worker listens on its own SO_REUSEPORT socket.
        self.sockets = sockets
        self.balanced = balanced
        self.metrics_dir = metrics_dir  # the workers' PROMETHEUS_MULTIPROC_DIR
        self.stop = stop or threading.Event()  # set: stop supervising
        self.children: dict[int, int] = {}  # pid -> worker number

    # ---- one worker -------------------------------------------------------------

    def spawn(self, number: int) -> tuple[int, int]:
        """Fork worker ``number``; (pid, read end of its ready pipe)."""
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = EXIT_CRASH
            try:
                os.close(read_fd)
                for sig in STOP_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)  # until the worker sets its own
                stop_when_orphaned(supervisor)
                use_shared_metrics()
                listeners = self.sockets
                if self.balanced:
                    listeners = own_listeners(self.sockets)
                    for reserved in self.sockets:
                        reserved.close()
                code = self.serve({"sockets": listeners}, Worker(number, write_fd))
            except BaseException:
                log.exception("worker %d crashed", number)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(write_fd)
        self.children[pid] = number
        return pid, read_fd

    def reap(self) -> list[tuple[int, int, int]]:
        """The workers that have exited since last asked: (pid, number, exit code)."""
        gone = []
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            number = self.children.pop(pid, None)
            if number is not None:
                gone.append((pid, number, os.waitstatus_to_exitcode(status)))
                self.forget(pid)
        return gone

    def forget(self, pid: int) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.metrics_dir)  # its live gauges stop counting

    # ---- the server's life ----------------------------------------------------------

    def start_all(self) -> int | None:
        """Start every worker and wait until all serve; the exit code of one that failed."""
        pending = {}
        for number in range(1, self.count + 1):
            _pid, read_fd = self.spawn(number)
            pending[read_fd] = number
        deadline = time.monotonic() + READY_TIMEOUT
        failed = False
        try:
            while pending and not self.stop.is_set():
                if time.monotonic() > deadline:
                    print(
                        f"error: SERVICE_UNAVAILABLE: workers not ready after {READY_TIMEOUT:.0f}s",
                        file=sys.stderr,
                    )
                    return EXIT_UNAVAILABLE
                readable, _, _ = select.select(list(pending), [], [], 0.2)
                for fd in readable:
                    said = os.read(fd, 1)
                    os.close(fd)
                    pending.pop(fd)
                    if not said:  # it exited before it was ready
                        failed = True
                if failed:
                    for _pid, _number, code in self._wait_for_exits():
                        if code != 0:
                            return code
                    return EXIT_UNAVAILABLE
        finally:
            for fd in pending:
                os.close(fd)
        return None

    def _wait_for_exits(self) -> list[tuple[int, int, int]]:
        """After a failed start: let the failed worker's exit be collected."""
        deadline = time.monotonic() + 10
        gone: list[tuple[int, int, int]] = []
        while not gone and time.monotonic() < deadline:
            gone = self.reap()
            if not gone:
                time.sleep(0.05)
        return gone

    def supervise(self) -> None:
        """Replace workers that die, until asked to stop.

        A replacement starts after a pause that doubles (up to RESTART_DELAY[1])
        while replacements die before they are ready, and is reset by one that
        comes up: a worker killed by accident is back in a second, and a
        database that is down is not hammered.
        """
        delay = RESTART_DELAY[0]
        due: dict[int, float] = {}  # worker number -> when to start it again
        starting: dict[int, int] = {}  # read end of a replacement's ready pipe -> number
        try:
            while not self.stop.is_set():
                readable, _, _ = select.select(list(starting), [], [], 0.25)
                for fd in readable:
                    starting.pop(fd)
                    came_up = os.read(fd, 1) == b"1"
                    os.close(fd)
                    delay = RESTART_DELAY[0] if came_up else min(delay * 2, RESTART_DELAY[1])
                for pid, number, code in self.reap():
                    log.warning(
                        "worker %d (pid %d) exited with %s; starting a new one in %.0fs",
                        number,
                        pid,
                        code,
                        delay,
                        extra={"exit_code": code},
                    )
                    due[number] = time.monotonic() + delay
                for number, when in list(due.items()):
                    if time.monotonic() >= when and not self.stop.is_set():
                        del due[number]
                        _pid, read_fd = self.spawn(number)
                        starting[read_fd] = number
        finally:
            for fd in starting:
                os.close(fd)

    def stop_all(self) -> None:
        """SIGTERM every worker (each drains), wait for them, kill what outlives the grace."""
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for sock in self.sockets:  # no new connections: workers close their copies too
            sock.close()
        deadline = time.monotonic() + DRAIN_SECONDS + STOP_GRACE
        while self.children and time.monotonic() < deadline:
            if not self.reap():
                time.sleep(0.05)
        for pid in list(self.children):
            log.warning("worker %d did not stop; killing it", self.children[pid])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.children.pop(pid)
            self.forget(pid)


def serve_workers(
    settings,
    host: str,
    port: int,
    threads: int,
    count: int,
    serve_process: Callable[..., int],
) -> int:
    """``usermgmt serve --workers count``: see the module docstring. Returns the exit code.

    Each worker runs ``serve_process(settings, threads, listen, worker)``.
    """
    from usermgmt.api.ratelimit import counts_per_process
    from usermgmt.core.errors import ConfigurationError

    if not hasattr(os, "fork"):
        print("error: VALIDATION_ERROR: --workers needs fork (POSIX)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if counts_per_process(settings):
            print(
                "error: VALIDATION_ERROR: with --workers, rate-limit counters must be shared: "
                "set USERMGMT_RATE_LIMIT_STORAGE=database (or redis://host:6379); "
                "memory:// would count each worker separately",
                file=sys.stderr,
            )
            return EXIT_CONFIG
    except (ConfigurationError, ValueError) as exc:
        print(f"error: VALIDATION_ERROR: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    # The database and the schema once, before anything is bound or forked.
    services = open_services(settings)
    if services is None:
        return EXIT_UNAVAILABLE
    mail = services.mail.describe_transport()
    note = database_note(services.runtime.options)
    services.close()  # no connection may cross the fork

    try:
        sockets = bind_sockets(host, port, listen=not BALANCED, reuse_port=BALANCED)
    except ListenError as exc:
        return exc.report()

    own_dir = None
    if given := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # As prometheus_client asks: values of an earlier run must not be summed in.
        for stale in Path(given).glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        own_dir = given = tempfile.mkdtemp(prefix="usermgmt-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir

    serve = functools.partial(serve_process, settings, threads)
    with stop_on_signals() as stop:
        supervisor = Supervisor(
            serve, count, sockets, metrics_dir=given, balanced=BALANCED, stop=stop
        )
        started = False
        try:
            failed = supervisor.start_all()
            if failed is not None:
                return failed
            started = True
            if not stop.is_set():
                base = f"http://{display_address(sockets)}"
                print_banner(base, f"workers: {count}, threads: {threads} each{note}", mail)
                log.info(
                    "server started",
                    extra={"url": base, "workers": count, "threads": threads, "pid": os.getpid()},
                )
                supervisor.supervise()
            log.info("shutting down: workers finish their requests in flight")
            return EXIT_OK
        finally:
            supervisor.stop_all()
            if own_dir:
                shutil.rmtree(own_dir, ignore_errors=True)
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            if started:
                log.info("server stopped")
                print("usermgmt API stopped", flush=True)
