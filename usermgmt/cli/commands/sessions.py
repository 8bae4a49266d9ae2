"""`usermgmt sessions …`: a user's signed-in sessions."""

from __future__ import annotations

from typing import Annotated

import typer

from usermgmt.cli import state
from usermgmt.cli.commands.users import UserArg, resolve
from usermgmt.cli.fields import FieldsOption, choose_fields
from usermgmt.cli.output import (
    Column,
    Output,
    OutputOption,
    QuietOption,
    notice,
    render,
    short_time,
)

SESSION_FIELDS = [
    "id", "created_at", "expires_at", "last_used_at", "revoked_at", "ip", "user_agent",
]  # fmt: skip

app = typer.Typer(help="List and revoke users' sessions.", no_args_is_help=True)


@app.command("list")
def list_sessions(
    user: UserArg,
    fields: FieldsOption = None,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """List a user's live sessions (signed in, not expired, not revoked).

    \b
    Examples:
      usermgmt sessions list ann@example.com
      usermgmt sessions list ann -q
    """
    chosen = choose_fields(fields, SESSION_FIELDS)
    uid = resolve(user, include_deleted=True)
    sessions = state.backend().sessions.list(state.actor(), uid)
    render(
        (s.model_dump(mode="json") for s in sessions),
        output=output,
        quiet=quiet,
        columns=[
            Column("ID", "id", no_wrap=True),
            Column("CREATED", lambda s: short_time(s["created_at"]), no_wrap=True),
            Column("LAST USED", lambda s: short_time(s["last_used_at"]), no_wrap=True),
            Column("EXPIRES", lambda s: short_time(s["expires_at"]), no_wrap=True),
            Column("IP", "ip"),
            Column("USER AGENT", "user_agent"),
        ],
        empty="No live sessions.",
        fields=chosen,
    )


@app.command("revoke")
def revoke(
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="ID...",
            help="Session ids; with --all, users' UUIDs, short ids, emails or usernames. "
            "- reads more from stdin, one per line.",
            show_default=False,
        ),
    ],
    all_: Annotated[
        bool, typer.Option("--all", help="Revoke every session of the users the IDs name.")
    ] = False,
) -> None:
    """Revoke sessions, or with --all every session of users (signs them out).

    Several IDs are handled one by one; one that fails is named and the others
    go on (exit: the first failure's).

    \b
    Examples:
      usermgmt sessions revoke 6f1c2d3e-4b5a-4c3d-9e8f-7a6b5c4d3e2f
      usermgmt sessions revoke ann@example.com --all
      usermgmt users list -q --role admin | usermgmt sessions revoke --all -
    """
    from usermgmt.cli import bulk

    svc = state.backend()
    actor, ctx = state.actor(), state.request_context()
    ended = 0

    def revoke_one(target: str) -> None:
        nonlocal ended
        if all_:
            uid = resolve(target, include_deleted=True)
            ended += svc.sessions.revoke_all(actor, ctx, uid)
        else:
            svc.sessions.revoke(actor, ctx, target)
            ended += 1

    if not bulk.is_several(targets):
        revoke_one(targets[0])
        if all_:
            notice(f"Revoked {ended} session{'s' if ended != 1 else ''} of {targets[0]}.")
        else:
            notice(f"Revoked session {targets[0]}.")
        return
    refs = bulk.read_refs(targets)
    tally = bulk.Tally(len(refs), noun="users" if all_ else "sessions")
    for _ in bulk.each(refs, revoke_one, tally):
        pass
    if all_:
        notice(f"Revoked {ended} session{'s' if ended != 1 else ''}.")
    tally.summarise("signed out" if all_ else "revoked")
