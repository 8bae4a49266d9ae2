"""`usermgmt roles …`: the roles there are, and who holds them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from usermgmt.cli import state
from usermgmt.cli.bulk import UsersArg
from usermgmt.cli.commands.users import act_on_users, complete_role, resolve
from usermgmt.cli.fields import FieldsOption, choose_fields
from usermgmt.cli.output import Column, Output, OutputOption, QuietOption, render
from usermgmt.core.vocabulary import ROLE_NAMES, words

if TYPE_CHECKING:
    from usermgmt.core.schemas import UserOut

app = typer.Typer(help="List roles; grant and revoke them.", no_args_is_help=True)

RoleArg = Annotated[
    str,
    typer.Argument(metavar="ROLE", help=f"{words(ROLE_NAMES)}.", autocompletion=complete_role),
]


@app.command("list")
def list_roles(
    fields: FieldsOption = None, output: OutputOption = Output.table, quiet: QuietOption = False
) -> None:
    """List the roles.

    \b
    Example:
      usermgmt roles list -o json
    """
    chosen = choose_fields(fields, ["name", "description"])
    roles = state.backend().roles.list(state.actor())
    render(
        (r.model_dump(mode="json") for r in roles),
        output=output,
        quiet=quiet,
        id_key="name",
        columns=[Column("NAME", "name", no_wrap=True), Column("DESCRIPTION", "description")],
        empty="No roles.",
        fields=chosen,
    )


@app.command("grant")
def grant(
    users: UsersArg,
    role: RoleArg,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Give users a role (nothing changes for who holds it already) and print them.

    \b
    Examples:
      usermgmt roles grant ann@example.com moderator
      usermgmt roles grant ann bob moderator
    """

    def grant_one(ref: str) -> UserOut:
        uid = resolve(ref)
        return state.backend().roles.grant(state.actor(), state.request_context(), uid, role)

    act_on_users(users, grant_one, did="changed", output=output, quiet=quiet)


@app.command("revoke")
def revoke(
    users: UsersArg,
    role: RoleArg,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Take a role from users and print them. The last active admin keeps theirs.

    \b
    Examples:
      usermgmt roles revoke ann@example.com moderator
      usermgmt users list -q --role moderator | usermgmt roles revoke - moderator
    """

    def revoke_one(ref: str) -> UserOut:
        uid = resolve(ref)
        return state.backend().roles.revoke(state.actor(), state.request_context(), uid, role)

    act_on_users(users, revoke_one, did="changed", output=output, quiet=quiet)
