"""Serving the API with waitress: start-up checks, JSON logs, graceful shutdown.

``serve(settings, host, port, threads, workers)`` is what ``usermgmt serve``
calls. ``python -m usermgmt.api.server --host … --port …`` does the same from
the environment's settings. With ``workers`` > 1, usermgmt.api.workers forks
that many processes on one port, each running ``serve_process``.

Shutdown (SIGTERM or SIGINT): the listening sockets close at once (new
connections are refused), requests already being served run to completion
and their responses are flushed, idle keep-alive connections are closed, then
the process exits 0. A drain that takes longer than ``DRAIN_SECONDS`` is cut.

While serving, a background thread delivers the mail outbox (see
usermgmt.core.mail); it stops after the drain, letting a message in flight be
recorded as sent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from usermgmt.api.workers import Worker

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 5
DRAIN_SECONDS = 30.0
MAX_THREADS = 256
MAX_WORKERS = 64
# A queue deeper than this is logged (at most once per QUEUE_LOG_INTERVAL seconds).
QUEUE_LOG_THRESHOLD = 50
QUEUE_LOG_INTERVAL = 60.0

_STANDARD_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_encode = json.JSONEncoder(default=str).encode  # json.dumps(default=str) builds one per call


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any extra fields."""

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # the last second formatted, and its text
        self.static: dict[str, Any] = {}  # fields on every line (a worker's number)

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        return f"{cached[1]}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self.static,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_RECORD_KEYS and key[0] != "_":
                data[key] = value
        if record.exc_info:
            # Server-side log only: clients never see it.
            data["exception"] = self.formatException(record.exc_info)
        return _encode(data)


def configure_logging(level: str = "INFO", fmt: str | None = "json") -> None:
    handler = logging.StreamHandler(sys.stdout)
    if fmt == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # waitress logs through 'waitress' (and 'waitress.queue'); the root handler formats them.
    logging.getLogger("waitress").setLevel(level)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # Neither format prints the caller's file and line, thread or process, so records
    # need not collect them (the logging HOWTO's "Optimization"): one access-log line
    # per request makes this measurable.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def tag_log_lines(**fields: Any) -> None:
    """Add ``fields`` to every JSON log line of this process from now on."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            handler.formatter.static.update(fields)


class QueueDepthFilter(logging.Filter):
    """Turns waitress's 'Task queue depth is N' warnings into metrics.

    Every warning updates the gauge and the counter; a line reaches the log only
    when the queue is deep (>= QUEUE_LOG_THRESHOLD), at most once a minute.
    """

    def __init__(self, metrics) -> None:
        super().__init__()
        self.metrics = metrics
        self._last_logged = 0.0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        depth = record.args[0] if isinstance(record.args, tuple) and record.args else None
        if not isinstance(depth, int):
            return True
        self.metrics.queue_depth.set(depth)
        self.metrics.queue_events.inc()
        now = time.monotonic()
        with self._lock:
            if depth < QUEUE_LOG_THRESHOLD or now - self._last_logged < QUEUE_LOG_INTERVAL:
                return False
            self._last_logged = now
        record.queue_depth = depth
        return True


def _json_error_task_class():
    """A waitress ErrorTask whose body is the contract's JSON error (413 from waitress etc.)."""
    from waitress.task import ErrorTask

    from usermgmt.api.errors import STATUS_CODES, error_body
    from usermgmt.api.middleware import SECURITY_HEADERS

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            e = self.request.error
            code = STATUS_CODES.get(e.code) or "_".join(e.reason.upper().split())
            message = e.reason
            if e.code == 413:
                message = "Request body is too large"
            body = json.dumps(error_body(code, message, uuid.uuid4().hex)).encode()
            request_id = json.loads(body)["error"]["request_id"]
            self.status = f"{e.code} {e.reason}"
            self.response_headers.extend(
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("X-Request-ID", request_id),
                    *SECURITY_HEADERS.items(),
                ]
            )
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    return JsonErrorTask


def _listeners(socket_map: dict) -> list:
    from waitress.server import BaseWSGIServer

    return [d for d in list(socket_map.values()) if isinstance(d, BaseWSGIServer)]


def _busy(dispatcher, socket_map: dict) -> bool:
    from waitress.channel import HTTPChannel

    if dispatcher.queue or dispatcher.active_count:
        return True
    for channel in list(socket_map.values()):
        if isinstance(channel, HTTPChannel) and (channel.requests or channel.total_outbufs_len):
            return True
    return False


def _close_idle_channels(socket_map: dict) -> None:
    from waitress.channel import HTTPChannel

    for channel in list(socket_map.values()):
        if (
            isinstance(channel, HTTPChannel)
            and not channel.requests
            and not channel.total_outbufs_len
        ):
            channel.handle_close()


def default_threads() -> int:
    """Worker threads when ``--threads`` is not given: one per core (at least 2, at most 8).

    Python runs one thread at a time, and both database drivers hand that over
    on every statement: measured here (2 cores, authenticated GET under wrk),
    1 thread served 2,018 req/s, 2 threads 1,323, 4 threads 1,066, 8 threads
    863 (PostgreSQL: 822, 810, 531). Two threads keep both cores busy hashing
    passwords (bcrypt runs outside that lock), which is what logins need.
    """
    return max(2, min(8, os.cpu_count() or 2))


def serve(
    settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int | None = None,
    workers: int = 1,
) -> int:
    """Check the schema, serve until SIGTERM/SIGINT and return the exit code.

    ``workers`` > 1 forks that many server processes on one port
    (usermgmt.api.workers); ``threads`` is then the thread count of each.
    """
    configure_logging(settings.log_level, settings.log_format or "json")
    threads = threads or default_threads()
    if not 1 <= threads <= MAX_THREADS:
        print(
            f"error: VALIDATION_ERROR: --threads must be between 1 and {MAX_THREADS}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if not 1 <= workers <= MAX_WORKERS:
        print(
            f"error: VALIDATION_ERROR: --workers must be between 1 and {MAX_WORKERS}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if workers > 1:
        from usermgmt.api.workers import serve_workers

        return serve_workers(settings, host, port, threads, workers)
    return serve_process(settings, threads, listen={"host": host, "port": port})


def serve_process(settings, threads: int, listen: dict, worker: Worker | None = None) -> int:
    """One server process: build services and the app, serve on ``listen``; exit code.

    ``listen`` is waitress's ``host``/``port``, or ``sockets`` already bound by a
    parent process; ``worker`` is set in a worker of ``usermgmt serve --workers``
    (it has no banner of its own, and tells its parent when it is ready).
    """
    from waitress import create_server, wasyncore

    from usermgmt.api.app import create_app
    from usermgmt.api.listen import ListenError, bind_sockets
    from usermgmt.api.metrics import Metrics
    from usermgmt.core.db import mask_url
    from usermgmt.core.errors import ConfigurationError
    from usermgmt.core.mail import BackgroundDeliverer

    log = logging.getLogger("usermgmt.api.server")
    services = open_services(settings, threads)
    if services is None:
        return EXIT_UNAVAILABLE
    try:
        metrics = Metrics()
        app = create_app(services, metrics=metrics)
    except ConfigurationError as exc:
        services.close()
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    queue_filter = QueueDepthFilter(metrics)
    logging.getLogger("waitress.queue").addFilter(queue_filter)

    socket_map: dict = {}
    if "sockets" not in listen:  # one process: bind here (--port 0, PORT_IN_USE)
        try:
            listen = {"sockets": bind_sockets(listen["host"], listen["port"])}
        except ListenError as exc:
            services.close()
            return exc.report()
    server = create_server(
        app,
        map=socket_map,
        **listen,
        threads=threads,
        max_request_body_size=settings.max_body_bytes,
        ident="usermgmt",
        clear_untrusted_proxy_headers=False,
        channel_timeout=60,
    )
    error_task = _json_error_task_class()
    from waitress.channel import HTTPChannel

    class Channel(HTTPChannel):
        error_task_class = error_task

    for listener in _listeners(socket_map):
        listener.channel_class = Channel

    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    base = f"http://{_display_host(socket_map)}"
    if worker is not None:
        tag_log_lines(worker=worker.number)
    if worker is None:
        print_banner(base, f"threads: {threads}", services.mail.transport.describe())
    log.info(
        "server started",
        extra={
            "url": base,
            "threads": threads,
            "database": mask_url(settings.database_url),
            "max_body_bytes": settings.max_body_bytes,
        },
    )
    services.audit.log_head()  # "audit head seq=N hash=H": for operators to record
    # Delivers the outbox (reset links, verification, notices) while we serve.
    # One deliverer per server is enough: of several workers, worker 1 runs it (a
    # replacement of worker 1 takes it over; claims would keep several apart anyway).
    deliverer = BackgroundDeliverer(services) if worker is None or worker.number == 1 else None
    if deliverer is not None:
        deliverer.start()
    if worker is not None:
        worker.ready()
    adj = server.adj
    try:
        while not stop.is_set():
            wasyncore.loop(
                timeout=adj.asyncore_loop_timeout,
                map=socket_map,
                use_poll=adj.asyncore_use_poll,
                count=1,
            )
        log.info("shutting down: finishing requests in flight")
        for listener in _listeners(socket_map):
            wasyncore.dispatcher.close(listener)  # stop accepting; keep the wake-up trigger
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            _close_idle_channels(socket_map)
            if not _busy(server.task_dispatcher, socket_map):
                break
            wasyncore.loop(timeout=0.05, map=socket_map, use_poll=adj.asyncore_use_poll, count=1)
        else:
            log.warning("drain timed out; closing remaining connections")
    finally:
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        for channel in list(socket_map.values()):
            with contextlib.suppress(OSError):
                channel.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if deliverer is not None:
            deliverer.stop()  # lets the message in flight be recorded
        services.close()
    log.info("server stopped")
    if worker is None:
        print("usermgmt API stopped", flush=True)
    return EXIT_OK


def open_services(settings, threads: int = 2):
    """The services for ``threads`` request threads, or None once a schema behind the code
    or an unreachable database has been logged and said on stderr (the caller exits
    with EXIT_UNAVAILABLE)."""
    from usermgmt.core.db import mask_url
    from usermgmt.core.errors import SchemaOutOfDate, ServiceUnavailable
    from usermgmt.core.services import build_services

    log = logging.getLogger("usermgmt.api.server")
    try:
        return build_services(settings, threads=threads)
    except SchemaOutOfDate as exc:
        log.error(str(exc))
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
    except ServiceUnavailable as exc:
        log.error(
            "database unavailable: %s", exc, extra={"database": mask_url(settings.database_url)}
        )
        print(f"error: {exc.code}: {exc} ({mask_url(settings.database_url)})", file=sys.stderr)
    return None


def format_address(host: str, port: int | str) -> str:
    """``host:port`` for a URL (an IPv6 host in brackets)."""
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def print_banner(base: str, capacity: str, mail: str) -> None:
    print(f"usermgmt API serving on {base}  ({capacity})", flush=True)
    print(f"  docs:    {base}/docs", flush=True)
    print(f"  openapi: {base}/openapi.json", flush=True)
    print(f"  mail:    {mail}", flush=True)


def _display_host(socket_map: dict) -> str:
    listeners = _listeners(socket_map)
    if not listeners:
        return "127.0.0.1"
    first = listeners[0]
    return format_address(first.effective_host, first.effective_port)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from usermgmt.core.config import load_settings
    from usermgmt.core.errors import ConfigurationError

    parser = argparse.ArgumentParser(
        prog="python -m usermgmt.api.server", description="Serve the usermgmt REST API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    # The importable module, not this __main__ copy of it: workers import it by name,
    # and two copies would mean two JsonFormatter classes.
    from usermgmt.api import server

    return server.serve(
        settings, host=args.host, port=args.port, threads=args.threads, workers=args.workers
    )


if __name__ == "__main__":
    sys.exit(main())
