"""`usermgmt audit …`: read the audit log and verify its hash chain."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from usermgmt.cli import state
from usermgmt.cli.commands.users import resolve
from usermgmt.cli.errors import usage_error
from usermgmt.cli.fields import FieldsOption, choose_fields
from usermgmt.cli.output import Column, Output, OutputOption, QuietOption, render, render_one
from usermgmt.core.context import Actor
from usermgmt.core.formats import lookup
from usermgmt.core.text import printable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

app = typer.Typer(help="Read the audit log and verify its hash chain.", no_args_is_help=True)

PAGE_SIZE = 1000  # the most the core returns per page
_RELATIVE = re.compile(r"^\s*([0-9]+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

TIME_HELP = "ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z) or an age such as 30m, 24h, 7d."


def parse_time(value: str | None, option: str, now: Callable[[], datetime]) -> str | None:
    """An age like ``24h`` becomes that long before ``now()`` (the core's clock, asked only
    for an age); anything else goes to the core as is."""
    if value is None:
        return None
    match = _RELATIVE.match(value)
    if match:
        try:
            delta = timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
            return (now() - delta).isoformat()
        except OverflowError:
            raise usage_error(f"{option}: {value.strip()} ago is before the year 1") from None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise usage_error(f"{option}: expected {TIME_HELP}") from None
    if parsed.tzinfo is None:  # a bare date or time is UTC, like everything stored
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def _core_now() -> datetime:
    """What "24h" counts back from: the core's clock, or this machine's when the
    command talks to a server (whose clock a relative time cannot ask)."""
    if state.current().remote_target() is not None:
        return datetime.now(UTC)
    return state.services().clock.now()


EVENT_COLUMNS = [
    Column("SEQ", "seq", no_wrap=True),
    Column("AT", lambda e: e["at"][:19].replace("T", " "), min_width=19),
    Column("ACTION", "action", min_width=12),
    Column("ACTOR", "actor_label", min_width=10),
    Column("TARGET", "target_id", short_id=True),
    Column("CHANGES", "changes"),
]


@app.command("list")
def list_events(
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            metavar="ID",
            help="Events by this user (UUID, email or username) or operator (cli:alice).",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", metavar="ID", help="Events about this user (UUID, email or username)."
        ),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action", metavar="A", help="An action such as user.created; user.* for a prefix."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="T", help=f"From T on. {TIME_HELP}")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", metavar="T", help="Before T.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, metavar="N", help="At most N events.")
    ] = 50,
    fields: FieldsOption = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep printing new events as they are recorded, oldest first, like "
            "tail -f (until Ctrl-C, exit 0).",
        ),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            min=0.1,
            max=3600,
            metavar="SECONDS",
            help="With --follow: how often to look for new events.",
        ),
    ] = 2.0,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """List audit events, newest first; with --follow, the last ones and then each new one.

    \b
    Examples:
      usermgmt audit list --target ann@example.com
      usermgmt audit list --action 'user.*' --since 24h -o jsonl
      usermgmt audit list --follow --action 'user.login*' --limit 10
    """
    if follow and until is not None:
        raise usage_error("--follow and --until cannot be used together")
    if follow and output is Output.json:
        raise usage_error("--follow never ends one JSON document: use -o jsonl")
    from usermgmt.core.schemas import AuditEventOut

    chosen = choose_fields(fields, list(AuditEventOut.model_fields))
    query: dict[str, Any] = {
        "action": action,
        "since": parse_time(since, "--since", _core_now),
        "until": parse_time(until, "--until", _core_now),
    }
    if actor and Actor.is_label(actor):
        query["actor_label"] = actor
    elif actor:
        query["actor_id"] = resolve(actor, include_deleted=True)
    if target:
        query["target_id"] = resolve(target, include_deleted=True)
    query = {k: v for k, v in query.items() if v is not None}
    svc = state.backend()
    who = state.actor()
    first = svc.audit.query(who, {**query, "limit": min(PAGE_SIZE, limit)})

    def records() -> Iterator[dict[str, Any]]:
        page, remaining = first, limit
        while True:
            data = page.data[:remaining]
            for event in data:
                yield event.model_dump(mode="json")
            remaining -= len(data)
            if remaining <= 0 or not page.meta.next_cursor:
                return
            page = svc.audit.query(
                who,
                {**query, "limit": min(PAGE_SIZE, remaining), "cursor": page.meta.next_cursor},
            )

    if follow:
        _follow(list(records()), svc, who, query, interval, output, quiet, chosen)
        return
    render(
        records(),
        output=output,
        quiet=quiet,
        columns=EVENT_COLUMNS,
        empty="No events.",
        fields=chosen,
    )


def _follow(
    latest: list[dict[str, Any]],
    svc: Any,
    who: Actor,
    query: dict[str, Any],
    interval: float,
    output: Output,
    quiet: bool,
    fields: list[str] | None,
) -> None:
    """Print ``latest`` oldest first, then every event recorded after it, until Ctrl-C.

    Each poll asks for the newest events (filters kept, ``--since`` dropped) and
    pages back until it reaches the last sequence number printed: the sequence
    is the cursor, so no event is printed twice or skipped, locally or remotely.
    """
    import time

    from usermgmt.cli.output import column_for
    from usermgmt.cli.tables import write_batches
    from usermgmt.core.formats import write_chunks

    last = latest[0]["seq"] if latest else svc.audit.head().seq
    polling = {k: v for k, v in query.items() if k != "since"}

    def newer() -> list[dict[str, Any]]:
        nonlocal last
        found: list[dict[str, Any]] = []
        page = svc.audit.query(who, {**polling, "limit": PAGE_SIZE})
        while True:
            fresh = [e.model_dump(mode="json") for e in page.data if e.seq > last]
            found.extend(fresh)
            if len(fresh) < len(page.data) or not page.meta.next_cursor:
                break
            page = svc.audit.query(
                who, {**polling, "limit": PAGE_SIZE, "cursor": page.meta.next_cursor}
            )
        found.sort(key=lambda e: e["seq"])
        if found:
            last = found[-1]["seq"]
        return found

    def batches() -> Iterator[list[dict[str, Any]]]:
        yield latest[::-1]
        while True:
            time.sleep(interval)
            yield newer()

    out = sys.stdout
    try:
        if Output(output).for_people and not quiet:
            columns = [column_for(f, EVENT_COLUMNS) for f in fields] if fields else EVENT_COLUMNS
            write_batches(batches(), out, columns, wide=output is Output.wide)
            return
        events = (event for batch in batches() for event in batch)
        if quiet:
            pieces: Iterator[str] = (printable(event["id"]) + "\n" for event in events)
        else:
            if fields:
                events = ({f: lookup(e, f) for f in fields} for e in events)
            pieces = write_chunks(events, Output(output).value, fields)
        for piece in pieces:
            out.write(piece)
            out.flush()
    except KeyboardInterrupt:  # how following ends: not an error
        out.flush()


@app.command("verify")
def verify(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="SEQ:HASH",
            help="A head recorded earlier (usermgmt audit head): fail if the chain no "
            "longer holds it (truncated or rewound).",
        ),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Check the audit log's hash chain from the first event to the last.

    Also checks that every user has its creation event and, with --expect-head,
    that a head recorded earlier is still in the chain. Exit 0 with the number
    of events checked and the current head when all holds; exit 6 naming the
    first problem when not.

    \b
    Examples:
      usermgmt audit verify || alert "audit log tampered with"
      usermgmt audit verify --expect-head "$(cat /secure/audit-head)"
    """
    from usermgmt.core.errors import AuditChainBroken

    report = state.backend().audit.verify(state.actor(), expect_head)
    record = {
        "ok": report.ok,
        "checked": report.checked,
        "bad_seq": report.bad_seq,
        "bad_id": str(report.bad_id) if report.bad_id else None,
        "reason": report.reason,
        "head": str(report.head) if report.head else None,
        "users_without_creation": [str(u) for u in report.users_without_creation],
        "users_without_creation_count": report.users_without_creation_count,
    }
    if report.ok:
        render_one(record, output=output, human=lambda _r: report.describe())
        return
    if not Output(output).for_people:
        render_one(record, output=output)
    raise AuditChainBroken(
        report.describe(), details={k: v for k, v in record.items() if k != "ok"}
    )


@app.command("head")
def head(output: OutputOption = Output.table) -> None:
    """Print the audit chain's current head as SEQ:HASH.

    Keep it somewhere the database's operators cannot rewrite; later,
    `usermgmt audit verify --expect-head SEQ:HASH` fails if the chain was
    truncated or rewound past it. The server logs it at every start, and
    /metrics publishes it (usermgmt_audit_head_info).

    \b
    Example:
      usermgmt audit head >> /secure/audit-heads
    """
    current = state.backend().audit.head()
    record = {"seq": current.seq, "hash": current.hash, "head": str(current)}
    render_one(record, output=output, id_key="head", human=lambda r: r["head"])
