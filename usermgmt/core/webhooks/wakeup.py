"""Wakes this process's webhook deliverer when a transaction that queued deliveries commits
(a session that rolled back wakes it at its next commit instead: a harmless early look)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

_listeners: list[Callable[[], None]] = []
_lock = threading.Lock()
_HOOKED = "usermgmt_webhooks_queued"


def add_listener(callback: Callable[[], None]) -> None:
    with _lock:
        _listeners.append(callback)


def remove_listener(callback: Callable[[], None]) -> None:
    with _lock:
        if callback in _listeners:
            _listeners.remove(callback)


def _after_commit(session: Session) -> None:
    session.info.pop(_HOOKED, None)
    with _lock:
        callbacks = list(_listeners)
    for callback in callbacks:
        callback()


def after_commit(session: Session) -> None:
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        event.listen(session, "after_commit", _after_commit, once=True)
