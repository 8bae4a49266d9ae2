"""The output options and the one render step every command that prints records ends in.

- ``table`` (the default, terminal or not): a Rich table for people. Not a
  terminal means no colour and no truncation.
- ``json``: one document, an object for one record and an array for lists
  (written as it streams, so memory stays flat).
- ``jsonl``: one compact object per line.
- ``csv``: a header, then one row per record; lists are joined with ``;``,
  nested objects are JSON, booleans are ``true``/``false``, null is empty.
- ``-q/--quiet``: only the ids, one per line.

Machine formats carry nothing but the data: notes for people go to stderr
(and only on a terminal), errors go to stderr (see ``errors.py``).

Nothing a user wrote reaches the terminal raw (``usermgmt.core.text``): tables,
notes and ids show control and bidi characters as escapes (``\x1b``), cells are
``rich.text.Text`` (never markup), JSON escapes them as ``\u009b``, and a CSV cell
is escaped and formula-neutralised in a way import reverses.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Annotated, Any, TextIO

import typer

from usermgmt.cli.state import current
from usermgmt.core.formats import lookup, write_chunks
from usermgmt.core.text import json_safe, printable, printable_lines


class Output(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"

    @property
    def for_people(self) -> bool:
        """A table (cut to fit, or wide), not a machine format."""
        return self in (Output.table, Output.wide)


class FileFormat(StrEnum):
    """Formats of files read by `users import` and written by `users export`."""

    csv = "csv"
    json = "json"
    jsonl = "jsonl"


def remember_output(value: Enum | str | None) -> Any:
    """Option callback: errors of this command follow its output format."""
    if value is not None:
        current().output = value.value if isinstance(value, Enum) else value
    return value


OUTPUT_HELP = (
    "table for people (cut to the terminal with …), wide (every column, nothing cut); "
    "json (one document), jsonl (one object per line) or csv."
)

OutputOption = Annotated[
    Output,
    typer.Option(
        "--output",
        "-o",
        help=OUTPUT_HELP,
        callback=remember_output,
        case_sensitive=False,
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only ids, one per line.")]


@dataclass(frozen=True)
class Column:
    """One column of a table: a header and a key (dotted for nested) or a function.

    On a narrow terminal a column keeps at least ``min_width`` cells (or its
    header's width); a ``short_id`` column shows the first 8 characters of an id
    (see ``tables``).
    """

    header: str
    value: str | Callable[[Mapping[str, Any]], Any]
    no_wrap: bool = False
    min_width: int = 0
    short_id: bool = False
    keep: int = 0  # too narrow for every column: the lowest ``keep`` is left out first

    def get(self, record: Mapping[str, Any]) -> Any:
        if callable(self.value):
            return self.value(record)
        return lookup(record, self.value)


def short_time(value: str | None) -> str:
    """``2024-05-01T12:03:04.123456Z`` as ``2024-05-01 12:03`` (UTC) for tables."""
    if not value:
        return ""
    return value[:16].replace("T", " ")


def text_value(value: Any) -> str:
    """A cell for people: lists joined with commas, nested objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def notice(message: str) -> None:
    """A note for a person (done, counts): on stderr, and only when stderr is a terminal."""
    if is_terminal(sys.stderr):
        sys.stderr.write(printable_lines(message) + "\n")


# ---- render --------------------------------------------------------------


def render(
    records: Iterable[Mapping[str, Any]],
    *,
    output: Output | str,
    quiet: bool = False,
    columns: Sequence[Column] = (),
    id_key: str = "id",
    csv_fields: Sequence[str] | None = None,
    caption: str | None = None,
    empty: str = "Nothing to show.",
    stream: TextIO | None = None,
    fields: Sequence[str] | None = None,
) -> int:
    """Print a list of records in the chosen format; returns how many were printed.

    ``records`` may be a generator: every format streams it (a table in chunks).
    ``fields`` (``--fields``) chooses the table's columns and the keys of the
    other formats.
    """
    out = stream if stream is not None else sys.stdout
    fmt = Output(output)
    if quiet:
        return _write_ids(records, out, id_key)
    if fields:
        columns = [column_for(field, columns) for field in fields]
        csv_fields = list(fields)
        if fmt in (Output.json, Output.jsonl):
            records = ({f: lookup(r, f) for f in fields} for r in records)
    if fmt is Output.json:
        return _write_chunks(records, out, "json")
    if fmt is Output.jsonl:
        return _write_chunks(records, out, "jsonl")
    if fmt is Output.csv:
        return _write_chunks(records, out, "csv", csv_fields)
    return _write_table(records, out, columns, caption, empty, wide=fmt is Output.wide)


def column_for(field: str, columns: Sequence[Column]) -> Column:
    """The command's column showing ``field`` as it is, else a plain one."""
    for column in columns:
        if column.value == field:
            return column
    return Column(field.upper(), field)


def render_one(
    record: Mapping[str, Any],
    *,
    output: Output | str,
    quiet: bool = False,
    id_key: str = "id",
    csv_fields: Sequence[str] | None = None,
    human: Callable[[Mapping[str, Any]], str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Print one record: an object in json, one line in jsonl, a header and a row in csv.

    In table format ``human(record)`` is printed if given, else a field/value table.
    """
    out = stream if stream is not None else sys.stdout
    fmt = Output(output)
    if quiet:
        _write_ids([record], out, id_key)
    elif fmt is Output.json:
        out.write(json_safe(json.dumps(record, ensure_ascii=False, indent=2)) + "\n")
    elif fmt is Output.jsonl:
        _write_chunks([record], out, "jsonl")
    elif fmt is Output.csv:
        _write_chunks([record], out, "csv", csv_fields)
    elif human is not None:
        out.write(printable_lines(human(record)) + "\n")
    else:
        _write_fields(record, out)
    out.flush()


def _write_ids(records: Iterable[Mapping[str, Any]], out: TextIO, id_key: str) -> int:
    n = 0
    for record in records:
        out.write(printable(f"{lookup(record, id_key)}") + "\n")
        n += 1
    out.flush()
    return n


def _write_chunks(
    records: Iterable[Mapping[str, Any]],
    out: TextIO,
    fmt: str,
    fields: Sequence[str] | None = None,
) -> int:
    """Write ``records`` as the core's formats render them (the API streams the same)."""
    n = 0

    def counted() -> Iterator[Mapping[str, Any]]:
        nonlocal n
        for record in records:
            n += 1
            yield record

    write = out.write
    for piece in write_chunks(counted(), fmt, fields):
        write(piece)
    out.flush()
    return n


def print_rich(renderable: Any, out: TextIO) -> None:
    """Print a Rich renderable: no colour, no truncation, no trailing blanks off a terminal."""
    from rich.console import Console

    if is_terminal(out):
        Console(file=out, highlight=False).print(renderable)
        return
    buf = io.StringIO()
    Console(file=buf, highlight=False, width=100_000, force_terminal=False).print(renderable)
    out.write("".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines()))


def _write_table(
    records: Iterable[Mapping[str, Any]],
    out: TextIO,
    columns: Sequence[Column],
    caption: str | None,
    empty: str,
    *,
    wide: bool = False,
) -> int:
    from rich.text import Text

    from usermgmt.cli.tables import write_table

    count = write_table(records, out, columns, wide=wide)
    if not count:
        out.write(empty + "\n")
        return 0
    if caption:
        print_rich(Text(caption, style="dim"), out)
    return count


def flatten(record: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in record.items():
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _write_fields(record: Mapping[str, Any], out: TextIO) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE, show_header=False, show_edge=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in flatten(record):
        table.add_row(Text(printable(key)), Text(printable(text_value(value))))
    print_rich(table, out)
