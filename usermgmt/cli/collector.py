"""Python's cyclic garbage collector, paused while a command starts.

Starting a command allocates a few hundred thousand objects that live as long
as the process: SQLAlchemy's and pydantic's classes and the models built from
them, the Typer command tree. The collector runs every 700 allocations and
walks the older objects again and again while they are being made: about 15%
of a `users list` here. ``pause`` stops it; after ``RESUME_AFTER`` seconds,
when any command has started, ``resume`` freezes what was allocated so far
(``gc.freeze``: kept out of every later collection, as it would survive them
all anyway) and turns collection back on for what the command itself
allocates. A long import, an export or the server therefore runs with the
collector as usual, and a forked child (a ``serve --workers`` worker)
resumes it at once.
"""

from __future__ import annotations

import gc
import os
import threading

RESUME_AFTER = 0.5  # seconds

_fork_hook_registered = False


def pause(resume_after: float = RESUME_AFTER) -> None:
    """Stop collecting now and resume after ``resume_after`` seconds (or in a forked child)."""
    global _fork_hook_registered
    gc.disable()
    if not _fork_hook_registered:
        os.register_at_fork(after_in_child=resume)
        _fork_hook_registered = True
    timer = threading.Timer(resume_after, resume)
    timer.daemon = True
    timer.name = "usermgmt-gc-resume"
    timer.start()


def resume() -> None:
    """Freeze what exists and collect again from here on; does nothing if already on."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
