"""`usermgmt webhooks …`: subscriptions, deliveries, retries, replays, delivery for cron."""

from __future__ import annotations

import sys
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

app = typer.Typer(
    help="Subscribe apps to user changes; list, retry and replay deliveries.",
    no_args_is_help=True,
)

WEBHOOK_COLUMNS = [
    Column("ID", "id", no_wrap=True),
    Column("URL", "url"),
    Column("EVENTS", lambda w: ", ".join(w["events"])),
    Column("ENABLED", lambda w: "yes" if w["enabled"] else "no"),
    Column("FAILING SINCE", lambda w: short_time(w["failing_since"]), no_wrap=True),
    Column("DESCRIPTION", "description"),
]
DELIVERY_COLUMNS = [
    Column("ID", "id", no_wrap=True),
    Column("EVENT", "event_type"),
    Column("STATUS", "status"),
    Column("TRIES", "attempts"),
    Column("CODE", lambda d: d["last_status_code"] or ""),
    Column("MS", lambda d: "" if d["latency_ms"] is None else d["latency_ms"]),
    Column("CREATED", lambda d: short_time(d["created_at"]), no_wrap=True),
    Column("LAST ERROR", "last_error"),
]

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="The webhook id (webhooks list).")]
EventOption = Annotated[
    list[str] | None,
    typer.Option(
        "--event",
        help="An event type (repeat for several), or '*' for all: user.created, user.updated, "
        "user.deleted, user.restored, user.locked, user.unlocked, user.roles_changed, "
        "user.password_changed, user.email_verified, user.mfa_changed, session.revoked.",
        metavar="E",
    ),
]
DescriptionOption = Annotated[
    str | None, typer.Option("--description", help="A note for admins.", metavar="TEXT")
]


@app.command("create")
def create(
    url: Annotated[str, typer.Option("--url", help="Where events are POSTed.", metavar="U")],
    event: EventOption = None,
    description: DescriptionOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Subscribe a URL to events; prints its signing secret, once.

    Deliveries are signed as Standard Webhooks describes (webhook-id,
    webhook-timestamp, webhook-signature headers); keep the secret in the
    receiving app. It is not shown again.

    \b
    Examples:
      usermgmt webhooks create --url https://app.example/hooks --event user.created
      usermgmt webhooks create --url https://app.example/hooks --event '*' -o json
    """
    if not event:
        raise typer.BadParameter("give at least one --event (or --event '*')", param_hint="--event")
    data = {"url": url, "events": event}
    if description is not None:
        data["description"] = description
    created = state.backend().webhooks.create(state.actor(), state.request_context(), data)
    record = {**created.webhook.model_dump(mode="json"), "secret": created.secret}
    render_one(
        record,
        output=output,
        human=lambda r: (
            f"Webhook {r['id']} created for {r['url']}.\n"
            f"Signing secret (shown only now): {r['secret']}"
        ),
    )


@app.command("list")
def list_webhooks(output: OutputOption = Output.table, quiet: QuietOption = False) -> None:
    """List the subscriptions (never their secrets).

    \b
    Example:
      usermgmt webhooks list -o json
    """
    page = state.backend().webhooks.list(state.actor())
    render(
        (w.model_dump(mode="json") for w in page.data),
        output=output,
        quiet=quiet,
        columns=WEBHOOK_COLUMNS,
        empty="No webhooks.",
    )


@app.command("show")
def show(webhook_id: IdArgument, output: OutputOption = Output.table) -> None:
    """Show one subscription: URL, events, whether it is enabled, since when it fails.

    \b
    Example:
      usermgmt webhooks show 6f1c2d3e-4b5a-4c3d-9e8f-7a6b5c4d3e2f
    """
    out = state.backend().webhooks.get(state.actor(), webhook_id)
    render_one(out.model_dump(mode="json"), output=output)


@app.command("update")
def update(
    webhook_id: IdArgument,
    url: Annotated[str | None, typer.Option("--url", help="A new URL.", metavar="U")] = None,
    event: EventOption = None,
    description: DescriptionOption = None,
    enable: Annotated[
        bool | None,
        typer.Option(
            "--enable/--disable",
            help="Resume (and forget past failures) or pause; paused events wait.",
        ),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Change a subscription's URL, events or description, or enable/disable it.

    \b
    Examples:
      usermgmt webhooks update 6f1c2d3e-4b5a-4c3d-9e8f-7a6b5c4d3e2f --enable
      usermgmt webhooks update 6f1c2d3e-4b5a-4c3d-9e8f-7a6b5c4d3e2f --event '*'
    """
    data: dict = {}
    if url is not None:
        data["url"] = url
    if event:
        data["events"] = event
    if description is not None:
        data["description"] = description
    if enable is not None:
        data["enabled"] = enable
    out = state.backend().webhooks.update(state.actor(), state.request_context(), webhook_id, data)
    render_one(out.model_dump(mode="json"), output=output)


@app.command("delete")
def delete(webhook_id: IdArgument) -> None:
    """Delete a subscription and its deliveries (pending ones are not sent).

    \b
    Example:
      usermgmt webhooks delete 6f1c2d3e-4b5a-4c3d-9e8f-7a6b5c4d3e2f
    """
    state.backend().webhooks.delete(state.actor(), state.request_context(), webhook_id)
    notice(f"Webhook {webhook_id} deleted.")


@app.command("test")
def test(webhook_id: IdArgument, output: OutputOption = Output.table) -> None:
    """Queue a webhook.test event for this subscription (sent by the next delivery run).

    \b
    Example:
      usermgmt webhooks test 6f1c2d3e-4b5a-4c3d-9e8f-7a6b5c4d3e2f && usermgmt webhooks deliver
    """
    out = state.backend().webhooks.test(state.actor(), state.request_context(), webhook_id)
    if Output(output) is Output.table:
        notice(f"Test event {out.webhook_id} queued (delivery {out.id}).")
    else:
        render_one(out.model_dump(mode="json"), output=output)


@app.command("deliveries")
def deliveries(
    webhook_id: IdArgument,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only pending, delivered or failed (dead-lettered).", metavar="S"
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="At most N deliveries.", metavar="N")
    ] = 100,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """List a subscription's deliveries, newest first: status, attempts, code, latency.

    \b
    Examples:
      usermgmt webhooks deliveries 6f1c2d3e-4b5a-4c3d-9e8f-7a6b5c4d3e2f --status failed
    """
    page = state.backend().webhooks.deliveries(
        state.actor(), webhook_id, status=status, limit=limit
    )
    render(
        (d.model_dump(mode="json") for d in page.data),
        output=output,
        quiet=quiet,
        columns=DELIVERY_COLUMNS,
        empty="No deliveries.",
    )


@app.command("retry")
def retry(
    delivery_id: Annotated[
        str, typer.Argument(metavar="DELIVERY_ID", help="The delivery id (webhooks deliveries).")
    ],
    output: OutputOption = Output.table,
) -> None:
    """Send one delivery again with fresh attempts (dead-lettered, waiting or delivered).

    \b
    Example:
      usermgmt webhooks retry 0b7e… && usermgmt webhooks deliver
    """
    out = state.backend().webhooks.retry(state.actor(), state.request_context(), delivery_id)
    if Output(output) is Output.table:
        notice(f"Delivery {out.id} ({out.event_type}) is queued again.")
    else:
        render_one(out.model_dump(mode="json"), output=output)


@app.command("replay")
def replay(
    webhook_id: IdArgument,
    since: Annotated[
        str,
        typer.Option("--since", help="RFC 3339 time, e.g. 2026-01-31T00:00:00Z.", metavar="T"),
    ],
    output: OutputOption = Output.table,
) -> None:
    """Send the subscription's events since T again, in order, with their webhook-ids.

    \b
    Example:
      usermgmt webhooks replay 6f1c2d3e-4b5a-4c3d-9e8f-7a6b5c4d3e2f --since 2026-01-31T00:00:00Z
    """
    out = state.backend().webhooks.replay(
        state.actor(), state.request_context(), webhook_id, {"since": since}
    )
    render_one(
        out.model_dump(mode="json"),
        output=output,
        id_key="replayed",
        human=lambda r: f"{r['replayed']} event(s) queued again.",
    )


@app.command("deliver")
def deliver(
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Try at most N deliveries in this run.", metavar="N"),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Send the webhook deliveries that are due (for cron; servers deliver too).

    Deliveries are claimed with a lease, so several deliverers never send one
    event twice (unless one dies mid-send: at least once). Exit 0 also when some
    failed; they are retried later with backoff, and counted here.

    \b
    Examples:
      usermgmt webhooks deliver
      * * * * *  usermgmt webhooks deliver -o json >> /var/log/usermgmt-webhooks.log
    """
    report = state.services().webhooks.deliver_pending(limit=limit)
    render_one(
        {
            "delivered": report.delivered,
            "retried": report.retried,
            "failed": report.failed,
            "disabled": report.disabled,
        },
        output=output,
        id_key="delivered",
        human=lambda r: (
            f"Delivered {r['delivered']}, to retry later {r['retried']}, "
            f"dead-lettered {r['failed']}, subscriptions disabled {r['disabled']}."
        ),
    )
    sys.stdout.flush()
