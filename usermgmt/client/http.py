"""httpx, imported without its command-line client.

httpx imports its own command-line client (click, pygments, rich's progress and
syntax: a few tens of milliseconds of a command's start) whenever those are
installed, as typer and rich are, and falls back to a stub when that import
fails. Nothing of ours runs httpx's CLI, so the import is made to fail.
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx  # noqa: E402

__all__ = ["httpx"]
