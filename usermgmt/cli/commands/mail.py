"""`usermgmt mail …`: deliver queued mail (for cron), list it, retry a dead letter."""

from __future__ import annotations

from typing import Annotated

import typer

from usermgmt.cli import state
from usermgmt.cli.output import (
    Column,
    Output,
    OutputOption,
    QuietOption,
    notice,
    render,
    render_one,
    short_time,
)

app = typer.Typer(help="Deliver, list and retry outgoing mail.", no_args_is_help=True)

MAIL_COLUMNS = [
    Column("ID", "id", no_wrap=True),
    Column("STATUS", "status"),
    Column("TEMPLATE", "template"),
    Column("TO", "to_addr"),
    Column("TRIES", "attempts"),
    Column("CREATED", lambda m: short_time(m["created_at"]), no_wrap=True),
    Column("SENT", lambda m: short_time(m["sent_at"]), no_wrap=True),
    Column("LAST ERROR", "last_error"),
]


@app.command("deliver")
def deliver(
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Try at most N messages in this run.", metavar="N"),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Send the mail that is due (SMTP, or .eml files without USERMGMT_SMTP_URL).

    Safe to run from cron while servers deliver too: messages are claimed with a
    lease, so two deliverers do not send one message twice. Exit 0 also when
    some messages failed; they are retried later with backoff, and counted here.

    \b
    Examples:
      usermgmt mail deliver
      */5 * * * *  usermgmt mail deliver -o json >> /var/log/usermgmt-mail.log
    """
    report = state.backend().mail.deliver_pending(limit=limit)
    render_one(
        {"sent": report.sent, "retried": report.retried, "failed": report.failed},
        output=output,
        id_key="sent",
        human=lambda r: (
            f"Sent {r['sent']}, to retry later {r['retried']}, dead-lettered {r['failed']}."
        ),
    )


@app.command("list")
def list_mail(
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only pending, sent or failed (dead-lettered) mail.", metavar="S"
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="At most N messages.", metavar="N")
    ] = 100,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """List outgoing mail, newest first. Links and tokens are never shown.

    \b
    Examples:
      usermgmt mail list --status failed
      usermgmt mail list -o json --limit 10
    """
    page = state.backend().mail.list(state.actor(), status=status, limit=limit)
    render(
        (m.model_dump(mode="json") for m in page.data),
        output=output,
        quiet=quiet,
        columns=MAIL_COLUMNS,
        empty="No mail.",
    )


@app.command("retry")
def retry(
    message_id: Annotated[str, typer.Argument(metavar="ID", help="The message id (mail list).")],
    output: OutputOption = Output.table,
) -> None:
    """Put a dead-lettered message back in the queue with fresh attempts.

    A pending message waiting for its backoff becomes due now; a sent one is a
    conflict (exit 4).

    \b
    Example:
      usermgmt mail retry 6f1c2d3e-4b5a-4c3d-9e8f-7a6b5c4d3e2f && usermgmt mail deliver
    """
    out = state.backend().mail.retry(state.actor(), state.request_context(), message_id)
    if Output(output).for_people:
        notice(f"Message {out.id} is queued again ({out.to_addr}).")
    else:
        render_one(out.model_dump(mode="json"), output=output)
