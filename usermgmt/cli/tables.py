"""Tables that never lie: every cell on one line, a cut cell ends in ``…``.

Rich, left to size a table to a narrow terminal, wraps cells mid-word, cuts
them with no mark and drops whole columns without a word. Here the widths are
decided first and handed to Rich as fixed widths:

- each column gets what its longest cell needs if all columns fit the terminal;
- else each keeps at least its minimum (its header, or the column's
  ``min_width``) and the rest of the width is shared out, longest needs first;
  a cell longer than its column ends in ``…``;
- if even the minimums do not fit, columns are left out, lowest ``keep``
  first, and a note on stderr names them (``-o wide`` or a wider terminal
  shows them).

Off a terminal nothing is cut (the widths are what the cells need). Ids are
shown by their first 8 characters (``short_id`` columns), which every command
taking a user id accepts as a prefix; ``-o wide`` shows them whole.

Rows are printed in chunks of :data:`CHUNK` with the widths the first chunk
decided, so a table of any length streams in constant memory. A later cell
longer than its column is cut with ``…``, never wrapped.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, TextIO

from usermgmt.core.text import printable

if TYPE_CHECKING:
    from usermgmt.cli.output import Column

CHUNK = 1000  # rows measured for the widths, and printed per Rich table
GAP = 2  # spaces between two columns
SHORT_ID = 8  # characters of an id shown in a table


def cell_text(column: Column, record: Mapping[str, Any], *, wide: bool) -> str:
    from usermgmt.cli.output import text_value

    text = printable(text_value(column.get(record)))
    if column.short_id and not wide:
        return text[:SHORT_ID]
    return text


def minimum(column: Column) -> int:
    from rich.cells import cell_len

    floor = SHORT_ID if column.short_id else column.min_width
    return max(cell_len(column.header), floor)


def fit(
    columns: Sequence[Column], needs: Sequence[int], width: int | None
) -> tuple[list[int], list[int]]:
    """The indexes of the columns shown and the width of each, for a terminal ``width``."""

    shown = list(range(len(columns)))
    if width is None or sum(needs) + GAP * (len(needs) - 1) <= width:
        return shown, list(needs)
    mins = [min(needs[i], minimum(c)) for i, c in enumerate(columns)]
    # Left out first: the lowest ``keep``, and of equals the rightmost.
    order = sorted(shown, key=lambda i: (columns[i].keep, -i))
    while len(shown) > 1 and sum(mins[i] for i in shown) + GAP * (len(shown) - 1) > width:
        shown.remove(order.pop(0))
    widths = {i: mins[i] for i in shown}
    spare = width - sum(widths.values()) - GAP * (len(shown) - 1)
    # Fair shares, smallest need first: a column that needs little gets all of it
    # (a status, a username), the long ones (emails, names) share what is left.
    short = sorted((i for i in shown if widths[i] < needs[i]), key=lambda k: needs[k] - widths[k])
    for n, i in enumerate(short):
        give = min(needs[i] - widths[i], spare // (len(short) - n))
        widths[i] += give
        spare -= give
    return shown, [widths[i] for i in shown]


def terminal_width(out: TextIO) -> int | None:
    from usermgmt.cli.output import is_terminal

    if not is_terminal(out):
        return None
    from rich.console import Console

    return Console(file=out).width


def write_table(
    records: Iterable[Mapping[str, Any]],
    out: TextIO,
    columns: Sequence[Column],
    *,
    wide: bool = False,
) -> int:
    """Print ``records`` as a table in chunks; returns how many rows were printed (0: none)."""
    rows = iter(records)
    return write_batches(iter(lambda: list(islice(rows, CHUNK)), []), out, columns, wide=wide)


def write_batches(
    batches: Iterable[list[Mapping[str, Any]]],
    out: TextIO,
    columns: Sequence[Column],
    *,
    wide: bool = False,
) -> int:
    """Print each batch as it comes, with the widths and header of the first non-empty one.

    ``audit list --follow`` hands its polls in here, so each shows at once.
    """
    from rich.cells import cell_len

    count = 0
    widths: list[int] = []
    shown: list[int] = []
    for batch in batches:
        if not batch:
            continue
        if not columns:
            from usermgmt.cli.output import Column

            columns = [Column(k.upper(), k) for k in batch[0]]
        header = not count
        if header:
            cells = [[cell_text(c, r, wide=wide) for c in columns] for r in batch]
            needs = [
                max(cell_len(c.header), *(cell_len(row[i]) for row in cells))
                for i, c in enumerate(columns)
            ]
            shown, widths = fit(columns, needs, None if wide else terminal_width(out))
            _note_left_out(columns, shown)
            lines = [[row[i] for i in shown] for row in cells]
        else:
            lines = [[cell_text(columns[i], r, wide=wide) for i in shown] for r in batch]
        _print_chunk(lines, columns, shown, widths, out, header)
        out.flush()
        count += len(batch)
    return count


def _note_left_out(columns: Sequence[Column], shown: list[int]) -> None:
    left_out = [columns[i].header for i in range(len(columns)) if i not in shown]
    if left_out:
        sys.stderr.write(
            f"note: {len(left_out)} column{'s' if len(left_out) != 1 else ''} left out at "
            f"this terminal width: {', '.join(left_out)} (-o wide shows every column)\n"
        )


def _print_chunk(
    lines: list[list[str]],
    columns: Sequence[Column],
    shown: list[int],
    widths: list[int],
    out: TextIO,
    header: bool,
) -> None:
    """The header (bold, through Rich) and a rule on the first chunk, then the rows.

    The widths are decided, so a row is each cell cut or padded to its width
    in terminal cells (Rich's measure); asking Rich to lay out a table of fixed
    widths gives the same text at a hundred times the cost per row.
    """
    from rich.text import Text

    if header:
        title = _row([columns[i].header for i in shown], widths)
        print_fixed(Text(title, style="bold"), out, len(title))
        out.write("\u2500" * (sum(widths) + GAP * (len(widths) - 1)) + "\n")
    out.write("".join(_row(line, widths) + "\n" for line in lines))


def _row(cells: list[str], widths: list[int]) -> str:
    return (" " * GAP).join(_fit_cell(c, w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _fit_cell(text: str, width: int) -> str:
    from rich.cells import cell_len, set_cell_size

    length = cell_len(text)
    if length <= width:
        return text + " " * (width - length)
    return set_cell_size(text, width - 1) + "\u2026"


def print_fixed(renderable: Any, out: TextIO, width: int) -> None:
    """Print at exactly ``width`` cells (the widths are decided), no colour off a terminal."""
    from rich.console import Console

    from usermgmt.cli.output import is_terminal

    if is_terminal(out):
        Console(file=out, highlight=False, width=max(width, 1)).print(renderable)
        return
    buf = io.StringIO()
    Console(file=buf, highlight=False, width=max(width, 1), force_terminal=False).print(renderable)
    out.write("".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines()))
