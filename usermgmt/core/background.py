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

from sqlalchemy import event
from sqlalchemy.orm import Session

Listener = Callable[[], None]


class CommitSignal:
    """Calls this process's listeners (a deliverer's ``wake``) after a transaction that
    queued work commits, so the deliverer looks now instead of at its next poll (a
    session that rolled back calls them at its next commit: a harmless early look)."""

    def __init__(self, key: str) -> None:
        self._key = key  # marks a session already hooked, in session.info
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def add_listener(self, callback: Listener) -> None:
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def after_commit(self, session: Session) -> None:
        """Call the listeners once ``session``'s transaction commits."""
        if not session.info.get(self._key):
            session.info[self._key] = True
            event.listen(session, "after_commit", self._fire, once=True)

    def _fire(self, session: Session) -> None:
        session.info.pop(self._key, None)
        with self._lock:
            callbacks = list(self._listeners)
        for callback in callbacks:
            callback()


class PollingLoop:
    """Subclasses set ``name`` (the thread is usermgmt-<name>, the log lines say
    "<name> deliverer …"), ``log`` and ``worker_suffix``, and define :meth:`run_once`
    (one batch; True when it was full; logs its errors, never raises)."""

    name = "background"
    worker_suffix = "background"
    log = logging.getLogger(__name__)

    def __init__(self, *, interval: float, signal: CommitSignal) -> None:
        self._interval = interval
        self._signal = signal
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
        self._signal.add_listener(self.wake)
        self.log.info("%s", self.started_line())

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        thread = self._thread
        if thread is None:
            return
        self._signal.remove_listener(self.wake)
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
