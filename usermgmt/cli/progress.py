"""Progress bars for long work (import, export, purge): Rich on a terminal, nothing otherwise.

The bar goes to stderr, so stdout keeps only the data, and it is shown only when
stderr is a terminal: cron jobs and pipes get no control characters.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from usermgmt.cli.output import is_terminal


class Bar:
    """What a command updates; the no-op version is used when there is no terminal."""

    def advance(self, n: float = 1, **fields: Any) -> None:
        pass

    def update(self, *, completed: float | None = None, **fields: Any) -> None:
        pass


class _RichBar(Bar):
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1, **fields: Any) -> None:
        self._progress.update(self._task, advance=n, **fields)

    def update(self, *, completed: float | None = None, **fields: Any) -> None:
        self._progress.update(self._task, completed=completed, **fields)


@contextmanager
def progress_bar(
    description: str,
    *,
    total: float | None = None,
    unit: str = "rows",
    show_bytes: bool = False,
    enabled: bool | None = None,
) -> Iterator[Bar]:
    """A bar on stderr when it is a terminal (``enabled`` forces either way).

    ``show_bytes``: ``total``/``completed`` are bytes (an input file), and the
    ``rows`` field counts the records.
    """
    if enabled is None:
        enabled = is_terminal(sys.stderr)
    if not enabled:
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [SpinnerColumn(), TextColumn("[progress.description]{task.description}")]
    if total is None:
        columns += [TextColumn("{task.fields[rows]:,} " + unit), TimeElapsedColumn()]
    elif show_bytes:
        columns += [
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]:,} " + unit),
            TimeRemainingColumn(),
        ]
    else:
        columns += [BarColumn(), MofNCompleteColumn(), TaskProgressColumn(), TimeRemainingColumn()]
    progress = Progress(*columns, console=Console(stderr=True), transient=True)
    with progress:
        task = progress.add_task(description, total=total, rows=0)
        yield _RichBar(progress, task)
