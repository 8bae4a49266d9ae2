"""`usermgmt sessions …`: a user's signed-in sessions."""

from __future__ import annotations

from typing import Annotated

import typer

from usermgmt.cli import state
from usermgmt.cli.commands.users import UserArg, resolve
from usermgmt.cli.output import (
    Column,
    Output,
    OutputOption,
    QuietOption,
    notice,
    render,
    short_time,
)

app = typer.Typer(help="List and revoke users' sessions.", no_args_is_help=True)


@app.command("list")
def list_sessions(
    user: UserArg, output: OutputOption = Output.table, quiet: QuietOption = False
) -> None:
    """List a user's live sessions (signed in, not expired, not revoked).

    \b
    Examples:
      usermgmt sessions list ann@example.com
      usermgmt sessions list ann -q
    """
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
    )


@app.command("revoke")
def revoke(
    target: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="A session id; with --all, the user's UUID, email or username.",
            show_default=False,
        ),
    ],
    all_: Annotated[
        bool, typer.Option("--all", help="Revoke every session of the user ID names.")
    ] = False,
) -> None:
    """Revoke one session, or with --all every session of a user (signs them out).

    \b
    Examples:
      usermgmt sessions revoke 6f1c2d3e-4b5a-4c3d-9e8f-7a6b5c4d3e2f
      usermgmt sessions revoke ann@example.com --all
    """
    svc = state.backend()
    if all_:
        uid = resolve(target, include_deleted=True)
        count = svc.sessions.revoke_all(state.actor(), state.request_context(), uid)
        notice(f"Revoked {count} session{'s' if count != 1 else ''} of {target}.")
    else:
        svc.sessions.revoke(state.actor(), state.request_context(), target)
        notice(f"Revoked session {target}.")
