"""`usermgmt roles …`: the roles there are, and who holds them."""

from __future__ import annotations

from typing import Annotated

import typer

from usermgmt.cli import state
from usermgmt.cli.commands.users import UserArg, complete_role, resolve, show_user
from usermgmt.cli.output import Column, Output, OutputOption, QuietOption, render
from usermgmt.core.vocabulary import ROLE_NAMES, words

app = typer.Typer(help="List roles; grant and revoke them.", no_args_is_help=True)

RoleArg = Annotated[
    str,
    typer.Argument(metavar="ROLE", help=f"{words(ROLE_NAMES)}.", autocompletion=complete_role),
]


@app.command("list")
def list_roles(output: OutputOption = Output.table, quiet: QuietOption = False) -> None:
    """List the roles.

    \b
    Example:
      usermgmt roles list -o json
    """
    roles = state.backend().roles.list(state.actor())
    render(
        (r.model_dump(mode="json") for r in roles),
        output=output,
        quiet=quiet,
        id_key="name",
        columns=[Column("NAME", "name", no_wrap=True), Column("DESCRIPTION", "description")],
        empty="No roles.",
    )


@app.command("grant")
def grant(
    user: UserArg,
    role: RoleArg,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Give a user a role (nothing changes if they hold it already) and print the user.

    \b
    Example:
      usermgmt roles grant ann@example.com moderator
    """
    uid = resolve(user)
    changed = state.backend().roles.grant(state.actor(), state.request_context(), uid, role)
    show_user(changed, output, quiet)


@app.command("revoke")
def revoke(
    user: UserArg,
    role: RoleArg,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Take a role from a user and print the user. The last active admin keeps theirs.

    \b
    Example:
      usermgmt roles revoke ann@example.com moderator
    """
    uid = resolve(user)
    changed = state.backend().roles.revoke(state.actor(), state.request_context(), uid, role)
    show_user(changed, output, quiet)
