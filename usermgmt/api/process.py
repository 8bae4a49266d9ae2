"""What a server process needs, whether it serves alone or as one of several workers.

usermgmt.api.server (one process) and usermgmt.api.workers (the supervisor of
``--workers N``) both use this module and neither imports the other: the
exit codes, the drain's limit, the JSON log set-up, opening the services with
plain errors, the banner, a worker's place, and stopping on SIGTERM/SIGINT.
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
from collections.abc import Iterator
from typing import Any

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 5
DRAIN_SECONDS = 30.0  # requests in flight at shutdown get this long to finish
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = logging.getLogger("usermgmt.api.server")

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
    # need not collect them (the logging HOWTO's "Optimization"): a line per request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def tag_log_lines(**fields: Any) -> None:
    """Add ``fields`` to every JSON log line of this process from now on."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            handler.formatter.static.update(fields)


def open_services(settings, threads: int = 2):
    """The services for ``threads`` request threads, or None once a schema behind the
    code or an unreachable database has been logged and said on stderr (the caller
    exits with EXIT_UNAVAILABLE)."""
    from usermgmt.core.errors import SchemaOutOfDate, ServiceUnavailable
    from usermgmt.core.services import build_services
    from usermgmt.core.services.runtime import runtime_options

    try:
        return build_services(settings, threads=threads)
    except SchemaOutOfDate as exc:
        log.error(str(exc))
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
    except ServiceUnavailable as exc:
        database = runtime_options(settings).database
        log.error("database unavailable: %s", exc, extra={"database": database})
        print(f"error: {exc.code}: {exc} ({database})", file=sys.stderr)
    return None


def database_note(options) -> str:
    """What the start-up line says of the database connection: prepared statements off."""
    return ", prepared statements off" if options.prepared_statements is False else ""


def print_banner(base: str, capacity: str, mail: str) -> None:
    print(f"usermgmt API serving on {base}  ({capacity})", flush=True)
    print(f"  docs:    {base}/docs", flush=True)
    print(f"  openapi: {base}/openapi.json", flush=True)
    print(f"  mail:    {mail}", flush=True)


class Worker:
    """What a worker process knows of its place: its number, and how to say it is ready."""

    def __init__(self, number: int, ready_fd: int | None) -> None:
        self.number = number
        self._ready_fd = ready_fd

    def ready(self) -> None:
        fd, self._ready_fd = self._ready_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):  # the parent stopped listening: nothing to tell
                os.write(fd, b"1")
            os.close(fd)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event SIGTERM and SIGINT set while inside; the earlier handlers come back after."""
    stop = threading.Event()

    def on_signal(_signum, _frame) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
