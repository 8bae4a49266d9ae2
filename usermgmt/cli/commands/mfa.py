"""`usermgmt mfa …`: users' second factor (TOTP), as an admin sees and resets it.

Enrolling is the user's own business (the API's /auth/mfa/* endpoints); an admin
sees whether a user has a second factor and removes it when the device is lost.
"""

from __future__ import annotations

from typing import Annotated

import typer

from usermgmt.cli import state
from usermgmt.cli.commands.users import UserArg
from usermgmt.cli.output import Output, OutputOption, QuietOption, notice, render_one, short_time
from usermgmt.cli.prompts import confirm

app = typer.Typer(help="See and reset users' second factor (TOTP).", no_args_is_help=True)


def _human(record) -> str:
    if not record["mfa_enabled"]:
        return f"{record['email']}: no second factor"
    return (
        f"{record['email']}: second factor enabled since {short_time(record['enrolled_at'])}, "
        f"{record['recovery_codes_left']} recovery codes left"
    )


@app.command("status")
def status(user: UserArg, output: OutputOption = Output.table, quiet: QuietOption = False) -> None:
    """Show whether a user has a second factor, since when, and recovery codes left.

    \b
    Examples:
      usermgmt mfa status ann@example.com
      usermgmt mfa status ann -o json
    """
    svc = state.backend()
    found = svc.user_reads.find(state.actor(), user)
    shown = svc.mfa.status(state.actor(), str(found.id))
    render_one(
        shown.model_dump(mode="json"), output=output, quiet=quiet, id_key="user_id", human=_human
    )


@app.command("reset")
def reset(
    user: UserArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove a user's second factor (a lost device): their sessions end, they are mailed.

    They sign in with the password alone afterwards (and enrol again; the role
    policy may make them). Asks first on a terminal, unless --yes.

    \b
    Examples:
      usermgmt mfa reset ann@example.com
      usermgmt mfa reset 1b4e28ba-2fa1-11d2-883f-0016d3cca427 --yes
    """
    svc = state.backend()
    found = svc.user_reads.find(state.actor(), user)
    confirm(
        f"Reset the second factor of {found.email} ({found.id}) and end their sessions?", yes=yes
    )
    svc.mfa.reset(state.actor(), state.request_context(), str(found.id))
    notice(f"Reset the second factor of {found.email} ({found.id}); their sessions ended.")
