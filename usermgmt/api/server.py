"""Serving the API with waitress: start-up checks, JSON logs, graceful shutdown.

``serve(settings, host, port, threads, workers)`` is what ``usermgmt serve``
calls. ``python -m usermgmt.api.server --host … --port …`` does the same from
the environment's settings. With ``workers`` > 1, usermgmt.api.workers forks
that many processes on one port, each running ``serve_process``; what the two
share (exit codes, logging, the banner, signals) is in usermgmt.api.process.

Shutdown (SIGTERM or SIGINT): the listening sockets close at once (new
connections are refused), requests already being served run to completion
and their responses are flushed, idle keep-alive connections are closed, then
the process exits 0. A drain that takes longer than ``DRAIN_SECONDS`` is cut.

While serving, background threads deliver the mail outbox (see
usermgmt.core.mail) and the webhooks (usermgmt.core.webhooks); they stop after
the drain, letting what is in flight be recorded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
import uuid

from usermgmt.api.process import (
    DRAIN_SECONDS,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    Worker,
    configure_logging,
    database_note,
    open_services,
    print_banner,
    stop_on_signals,
    tag_log_lines,
)

MAX_THREADS = 256
MAX_WORKERS = 64
# A queue deeper than this is logged (at most once per QUEUE_LOG_INTERVAL seconds).
QUEUE_LOG_THRESHOLD = 50
QUEUE_LOG_INTERVAL = 60.0

log = logging.getLogger("usermgmt.api.server")


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

    Python runs one thread at a time and both database drivers hand that lock
    over on every statement, so more threads serve fewer requests, not more;
    two keep both cores busy hashing passwords (bcrypt runs outside the lock).
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
    from usermgmt.core.services.runtime import runtime_options

    options = runtime_options(settings)
    configure_logging(options.log_level, options.log_format or "json")
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

        return serve_workers(settings, host, port, threads, workers, serve_process)
    return serve_process(settings, threads, listen={"host": host, "port": port})


def serve_process(settings, threads: int, listen: dict, worker: Worker | None = None) -> int:
    """One server process: build services and the app, serve on ``listen``; exit code.

    ``listen`` is waitress's ``host``/``port``, or ``sockets`` already bound by a
    parent process; ``worker`` is set in a worker of ``usermgmt serve --workers``
    (it has no banner of its own, and tells its parent when it is ready).
    """
    from waitress import create_server

    from usermgmt.api.app import create_app
    from usermgmt.api.listen import ListenError, bind_sockets
    from usermgmt.api.metrics import Metrics
    from usermgmt.core.errors import ConfigurationError
    from usermgmt.core.mail import BackgroundDeliverer
    from usermgmt.core.webhooks.delivery import BackgroundDeliverer as WebhookDeliverer

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
    options = services.runtime.options
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
        # The app refuses each body over its own limit; waitress's must let an import through.
        max_request_body_size=max(options.api.max_body_bytes, options.api.max_import_bytes),
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

    deliverer = webhook_deliverer = None
    try:
        with stop_on_signals() as stop:
            base = f"http://{_display_host(socket_map)}"
            if worker is not None:
                tag_log_lines(worker=worker.number)
            if worker is None:
                capacity = f"threads: {threads}{database_note(options)}"
                print_banner(base, capacity, services.mail.describe_transport())
            log.info(
                "server started",
                extra={
                    "url": base,
                    "threads": threads,
                    "database": options.database,
                    "prepared_statements": options.prepared_statements,
                    "max_body_bytes": options.api.max_body_bytes,
                },
            )
            services.audit.log_head()  # "audit head seq=N hash=H": for operators to record
            # Delivers the outbox (reset links, verification, notices) while we serve.
            # One deliverer per server is enough: of several workers, worker 1 runs it (a
            # replacement of worker 1 takes it over; claims would keep several apart anyway).
            if worker is None or worker.number == 1:
                deliverer = BackgroundDeliverer(services)
                deliverer.start()
                webhook_deliverer = WebhookDeliverer(services)  # the same, for webhooks
                webhook_deliverer.start()
            if worker is not None:
                worker.ready()
            _serve_until(stop, server, socket_map)
    finally:
        if webhook_deliverer is not None:
            webhook_deliverer.stop()  # lets the batch in flight be recorded
        if deliverer is not None:
            deliverer.stop()  # lets the message in flight be recorded
        services.close()
    log.info("server stopped")
    if worker is None:
        print("usermgmt API stopped", flush=True)
    return EXIT_OK


def _serve_until(stop: threading.Event, server, socket_map: dict) -> None:
    """Serve until ``stop`` is set, then drain: refuse new connections, let requests in
    flight finish (at most DRAIN_SECONDS), close idle keep-alive connections."""
    from waitress import wasyncore

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


def _display_host(socket_map: dict) -> str:
    from usermgmt.api.listen import format_address

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
    return serve(
        settings, host=args.host, port=args.port, threads=args.threads, workers=args.workers
    )


if __name__ == "__main__":
    sys.exit(main())
