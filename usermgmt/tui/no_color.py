"""``NO_COLOR`` as no-color.org means it: it counts only when set to something.

Textual turns the console monochrome whenever ``NO_COLOR`` is present, even empty
(``textual/app.py``: ``environ.pop("NO_COLOR", None) is not None``), while an empty
value means "unset". So the console removes an empty one from its environment
before its App is made. Rich, which prints the CLI's output, already reads it so.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping


def forget_empty_no_color(environ: MutableMapping[str, str] = os.environ) -> None:
    if environ.get("NO_COLOR") == "":
        del environ["NO_COLOR"]
