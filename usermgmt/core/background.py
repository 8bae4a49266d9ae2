"""One loop for the server's background deliverers (mail, webhooks).

A daemon thread runs a batch, goes again at once when the batch was full, else
waits ``interval`` seconds or until ``wake()`` (a commit in this process that
queued work calls it). ``stop()`` lets the batch in flight finish. Any number
of loops, here or in other processes, may share one database: claims keep
their batches apart.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

Listener = Callable[[], None]


class PollingLoop:
    """Subclasses set ``name`` (the thread is usermgmt-<name>, the log lines say
    "<name> deliverer …"), ``log`` and ``worker_suffix``, and define :meth:`run_once`
    (one batch; True when it was full; logs its errors, never raises)."""

    name = "background"
    worker_suffix = "background"
    log = logging.getLogger(__name__)

    def __init__(
        self,
        *,
        interval: float,
        add_listener: Callable[[Listener], None],
        remove_listener: Callable[[Listener], None],
    ) -> None:
        self._interval = interval
        self._add_listener, self._remove_listener = add_listener, remove_listener
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # The claim's worker id: which process (and which loop in it) holds a lease.
        self._worker = f"{socket.gethostname()}:{os.getpid()}:{self.worker_suffix}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def started_line(self) -> str:
        return f"{self.name} deliverer started"

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name=f"usermgmt-{self.name}", daemon=True
        )
        self._thread.start()
        self._add_listener(self.wake)
        self.log.info("%s", self.started_line())

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        thread = self._thread
        if thread is None:
            return
        self._remove_listener(self.wake)
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        self._thread = None
        self.log.info("%s deliverer stopped", self.name)

    def _loop(self) -> None:
        while not self._stop.is_set():
            busy = self.run_once()
            if busy and not self._stop.is_set():
                continue  # a full batch: there may be more due right now
            self._wake.wait(self._interval)
            self._wake.clear()

    def run_once(self) -> bool:
        raise NotImplementedError
