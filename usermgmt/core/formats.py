"""The record formats of every face: CSV, a JSON array, JSON lines.

Writing: :func:`write_chunks` turns records into the text the CLI prints
(``-o json|jsonl|csv``, ``users export``) and the API streams
(``GET /users/export``), piece by piece, so both faces give the same bytes and
memory stays flat for any number of records.

Reading import files (``users import``, ``POST /users/import``): UTF-8 with
or without a BOM.

Each reader yields ``(line_number, record)`` where the line is where the record
starts in the file. A row that cannot be parsed (malformed JSON line, a CSV row
with the wrong number of fields) yields a ``RowError`` instead, so the import
reports it like any other bad row. A file that cannot be read at all (not
UTF-8, a CSV header with unknown columns, a JSON document that is not an array)
raises a ValidationError naming the line; it aborts the import before anything
is committed.

Everything streams: memory stays flat whatever the file size, and
``Source.position`` (bytes read) drives the progress bar.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, Literal

from usermgmt.core.errors import ValidationError
from usermgmt.core.text import from_csv_cell, json_safe, to_csv_row

RecordFormat = Literal["csv", "json", "jsonl"]
RECORD_FORMATS: tuple[RecordFormat, ...] = ("csv", "json", "jsonl")

CHUNK_BYTES = 1 << 16
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


class Source:
    """Decoded text of a binary stream, as lines or chunks, with UTF-8 errors located."""

    def __init__(self, raw: IO[bytes], name: str) -> None:
        self.raw = raw
        self.name = name
        self.position = 0  # bytes read so far
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._lines_read = 0  # complete lines handed out, for error messages
        self._head = b""
        self._started = False

    def _fail(self, line: int, message: str) -> ValidationError:
        return ValidationError(f"{self.name}: line {line}: {message}")

    def peek(self, n: int = 512) -> bytes:
        """The first bytes of the file without consuming them (to sniff the format)."""
        if not self._started and len(self._head) < n:
            self._head += self.raw.read(n - len(self._head))
        return self._head

    def _read_bytes(self) -> bytes:
        if not self._started:
            self._started = True
            head, self._head = self._head, b""
            data = head + self.raw.read(CHUNK_BYTES)
            if data.startswith(UTF16_BOMS) and not data.startswith(codecs.BOM_UTF8):
                raise self._fail(
                    1,
                    "the file is UTF-16 or UTF-32; save it as UTF-8 "
                    "(for example: iconv -f UTF-16 -t UTF-8)",
                )
        else:
            data = self.raw.read(CHUNK_BYTES)
        self.position += len(data)
        return data

    def chunks(self) -> Iterator[str]:
        """Decoded text in pieces; a byte that is not UTF-8 stops with its line number."""
        while True:
            data = self._read_bytes()
            final = not data
            try:
                text = self._decoder.decode(data, final)
            except UnicodeDecodeError as exc:
                start = max(exc.start, 0)
                line = self._lines_read + data.count(b"\n", 0, start) + 1
                bad = exc.object[exc.start : exc.start + 1].hex()
                raise self._fail(
                    line,
                    f"not valid UTF-8 (byte 0x{bad}); save the file as UTF-8",
                ) from None
            self._lines_read += data.count(b"\n")
            if text:
                yield text
            if final:
                return

    def lines(self) -> Iterator[str]:
        """Lines with their ``\\n`` (only ``\\n`` splits: other separators stay in fields)."""
        pending = ""
        for text in self.chunks():
            pending += text
            start = 0
            while True:
                end = pending.find("\n", start)
                if end < 0:
                    break
                yield pending[start : end + 1]
                start = end + 1
            pending = pending[start:]
        if pending:
            yield pending


def sniff_format(source: Source) -> str:
    """``json`` if the text starts with ``[``, ``jsonl`` with ``{``, else ``csv``."""
    head = source.peek()
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    stripped = head.lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


def format_from_name(name: str) -> str | None:
    lower = name.lower()
    for suffix, fmt in (
        (".csv", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
    ):
        if lower.endswith(suffix):
            return fmt
    return None


# ---- CSV -------------------------------------------------------------------


def read_csv(source: Source, known_columns: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """Rows of a CSV file with a header line. Empty cells are left out (CSV has no null).

    Cells are decoded as every CSV this program writes encodes them
    (``usermgmt.core.text.from_csv_cell``: the formula guard and escapes removed).
    """
    from usermgmt.core.services.transfer import RowError

    known = set(known_columns)
    reader = csv.reader(source.lines(), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise source._fail(reader.line_num, f"unreadable CSV: {exc}") from None
    if header is None:
        return
    header = [h.strip().lower() for h in header]
    unknown = [h for h in header if h not in known]
    if unknown:
        raise source._fail(
            1,
            f"unknown column(s) {', '.join(repr(u) for u in unknown)}; "
            f"the columns are {', '.join(sorted(known))}",
        )
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise source._fail(1, f"column(s) named twice: {', '.join(duplicates)}")
    if "email" not in header:
        raise source._fail(1, "the header has no 'email' column")
    end = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise source._fail(reader.line_num, f"unreadable CSV: {exc}") from None
        line, end = end + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            yield line, RowError(line, f"has {len(row)} fields, the header has {len(header)}")
            continue
        yield line, {k: from_csv_cell(v) for k, v in zip(header, row, strict=True) if v != ""}


# ---- JSON lines --------------------------------------------------------------


def read_jsonl(source: Source) -> Iterator[tuple[int, Any]]:
    from usermgmt.core.services.transfer import RowError

    for number, text in enumerate(source.lines(), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, RowError(number, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(record, dict):
            yield number, RowError(number, "expected a JSON object")
            continue
        yield number, record


# ---- a JSON array ------------------------------------------------------------

_WHITESPACE = " \t\n\r"


def read_json_array(source: Source) -> Iterator[tuple[int, Any]]:
    """The objects of a top-level JSON array, decoded one at a time."""
    from usermgmt.core.services.transfer import RowError

    decoder = json.JSONDecoder()
    chunks = source.chunks()
    buf = ""
    pos = 0
    line = 1  # the line number of buf[mark]
    mark = 0
    eof = False

    def here() -> int:
        nonlocal line, mark
        line += buf.count("\n", mark, pos)
        mark = pos
        return line

    def more() -> bool:
        nonlocal buf, pos, mark, eof
        if eof:
            return False
        text = next(chunks, None)
        if text is None:
            eof = True
            return False
        here()
        buf = buf[pos:] + text
        pos = mark = 0
        return True

    def skip_ws() -> str | None:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more():
                return None

    first = skip_ws()
    if first is None:
        return
    if first != "[":
        raise source._fail(here(), "expected a JSON array of objects ([{...}, ...])")
    pos += 1
    expect_item = True
    while True:
        ch = skip_ws()
        if ch is None:
            raise source._fail(here(), "invalid JSON: the array is not closed with ']'")
        if ch == "]":
            pos += 1
            if skip_ws() is not None:
                raise source._fail(here(), "invalid JSON: unexpected text after the array")
            return
        if not expect_item:
            if ch != ",":
                raise source._fail(here(), "invalid JSON: expected ',' or ']' between objects")
            pos += 1
            expect_item = True
            continue
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as exc:
                if not more():
                    where = here() + buf.count("\n", pos, exc.pos)
                    raise source._fail(where, f"invalid JSON: {exc.msg}") from None
        start = here()
        pos = end
        expect_item = False
        if isinstance(value, dict):
            yield start, value
        else:
            yield start, RowError(start, "expected a JSON object")


# ---- writing -------------------------------------------------------------------


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """``record[path]``, where a dotted path reaches into nested objects."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def csv_value(value: Any) -> str:
    """A CSV cell: lists joined with ``;``, nested objects as JSON, booleans
    ``true``/``false``, null empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def write_chunks(
    records: Iterable[Mapping[str, Any]],
    fmt: RecordFormat,
    fields: Sequence[str] | None = None,
) -> Iterator[str]:
    """The text of ``records`` in ``fmt``, one piece per record (and the frame).

    ``json``: one array, each object indented; ``jsonl``: one compact object
    per line; ``csv``: a header of ``fields`` (default: the first record's
    keys), then one escaped, formula-neutralised row per record.
    """
    if fmt == "json":
        return _json_array(records)
    if fmt == "jsonl":
        return _jsonl(records)
    if fmt == "csv":
        return _csv(records, fields)
    raise ValueError(f"unknown record format {fmt!r}")


def _json_array(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    first = True
    yield "["
    for record in records:
        text = json_safe(json.dumps(record, ensure_ascii=False, indent=2)).replace("\n", "\n  ")
        yield ("\n  " if first else ",\n  ") + text
        first = False
    yield "]\n" if first else "\n]\n"


def _jsonl(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for record in records:
        yield json_safe(dumps(record)) + "\n"


class _Pieces:
    """A file-like for csv.writer that hands back what was written since the last call."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        return text


def _csv(records: Iterable[Mapping[str, Any]], fields: Sequence[str] | None) -> Iterator[str]:
    out = _Pieces()
    writer = csv.writer(out, lineterminator="\n")
    iterator = iter(records)
    if fields is None:
        first = next(iterator, None)
        if first is None:
            return
        fields = list(first.keys())
        writer.writerow(fields)
        writer.writerow(to_csv_row([csv_value(lookup(first, f)) for f in fields]))
    else:
        writer.writerow(fields)
    yield out.take()
    for record in iterator:
        writer.writerow(to_csv_row([csv_value(lookup(record, f)) for f in fields]))
        yield out.take()
