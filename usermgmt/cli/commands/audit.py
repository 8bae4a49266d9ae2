"""`usermgmt audit …`: read the audit log and verify its hash chain."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from usermgmt.cli import state
from usermgmt.cli.commands.users import resolve
from usermgmt.cli.errors import usage_error
from usermgmt.cli.output import Column, Output, OutputOption, QuietOption, render, render_one
from usermgmt.core.context import Actor

if TYPE_CHECKING:
    from collections.abc import Iterator

app = typer.Typer(help="Read the audit log and verify its hash chain.", no_args_is_help=True)

PAGE_SIZE = 1000  # the most the core returns per page
_RELATIVE = re.compile(r"^\s*([0-9]+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

TIME_HELP = "ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z) or an age such as 30m, 24h, 7d."


def parse_time(value: str | None, option: str) -> str | None:
    """An age like ``24h`` becomes that long ago (UTC); anything else goes to the core as is."""
    if value is None:
        return None
    match = _RELATIVE.match(value)
    if match:
        try:
            delta = timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
            return (datetime.now(UTC) - delta).isoformat()
        except OverflowError:
            raise usage_error(f"{option}: {value.strip()} ago is before the year 1") from None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise usage_error(f"{option}: expected {TIME_HELP}") from None
    if parsed.tzinfo is None:  # a bare date or time is UTC, like everything stored
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


EVENT_COLUMNS = [
    Column("SEQ", "seq", no_wrap=True),
    Column("AT", lambda e: e["at"][:19].replace("T", " "), no_wrap=True),
    Column("ACTION", "action", no_wrap=True),
    Column("ACTOR", "actor_label"),
    Column("TARGET", "target_id", no_wrap=True),
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
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """List audit events, newest first.

    \b
    Examples:
      usermgmt audit list --target ann@example.com
      usermgmt audit list --action 'user.*' --since 24h -o jsonl
    """
    query: dict[str, Any] = {
        "action": action,
        "since": parse_time(since, "--since"),
        "until": parse_time(until, "--until"),
    }
    if actor and Actor.is_label(actor):
        query["actor_label"] = actor
    elif actor:
        query["actor_id"] = resolve(actor, include_deleted=True)
    if target:
        query["target_id"] = resolve(target, include_deleted=True)
    query = {k: v for k, v in query.items() if v is not None}
    svc = state.services()
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

    render(records(), output=output, quiet=quiet, columns=EVENT_COLUMNS, empty="No events.")


@app.command("verify")
def verify(output: OutputOption = Output.table) -> None:
    """Check the audit log's hash chain from the first event to the last.

    Exit 0 with the number of events checked when the chain is intact; exit 6
    naming the first bad event when it is not.

    \b
    Example:
      usermgmt audit verify || alert "audit log tampered with"
    """
    from usermgmt.core.errors import AuditChainBroken

    report = state.services().audit.verify(state.actor())
    record = {
        "ok": report.ok,
        "checked": report.checked,
        "bad_seq": report.bad_seq,
        "bad_id": str(report.bad_id) if report.bad_id else None,
        "reason": report.reason,
    }
    if report.ok:
        render_one(
            record,
            output=output,
            human=lambda r: f"Audit chain intact: {r['checked']:,} events checked.",
        )
        return
    if output is not Output.table:
        render_one(record, output=output)
    event = f"event #{report.bad_seq}" + (f" ({report.bad_id})" if report.bad_id else "")
    raise AuditChainBroken(
        f"Audit chain broken at {event}: {report.reason}; "
        f"the {report.checked:,} events before it are intact",
        details={k: v for k, v in record.items() if k != "ok"},
    )
