"""`usermgmt context …`: the servers you have logged in to, and which one is current."""

from __future__ import annotations

from typing import Annotated

import typer

from usermgmt.cli.output import Column, Output, OutputOption, QuietOption, render, render_one
from usermgmt.cli.remote import say

app = typer.Typer(
    help="List, switch, show and remove remote contexts (usermgmt login makes them).",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The context's name.")]
COLUMNS = [
    Column("CURRENT", lambda c: "*" if c["current"] else ""),
    Column("NAME", "name", no_wrap=True),
    Column("SERVER", "server", no_wrap=True),
    Column("USER", "user"),
    Column("LOGGED IN", lambda c: "yes" if c["logged_in"] else "no"),
]


@app.command("list")
def list_contexts(output: OutputOption = Output.table, quiet: QuietOption = False) -> None:
    """List the contexts; the current one is marked. Tokens are never shown.

    \b
    Example:
      usermgmt context list
    """
    from usermgmt.client.contexts import Context, ContextStore

    data = ContextStore().read()
    current = data.get("current")
    render(
        (
            Context.from_dict(raw).public(name, current=name == current)
            for name, raw in sorted(data["contexts"].items())
        ),
        output=output,
        quiet=quiet,
        id_key="name",
        columns=COLUMNS,
        empty="No contexts: usermgmt login --server URL makes one.",
    )


@app.command("use")
def use(name: NameArg) -> None:
    """Make a context the current one: commands without --context go through it.

    \b
    Example:
      usermgmt context use prod
    """
    from usermgmt.client.contexts import ContextStore, check_name

    store = ContextStore()
    name, context = store.get(check_name(name))
    with store.locked() as data:
        data["current"] = name
    say(f"Now using context {name} ({context.server}).")


@app.command("show")
def show(
    name: Annotated[
        str | None,
        typer.Argument(metavar="[NAME]", help="Default: the current context.", show_default=False),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Show a context: server, user, TLS settings and whether it is logged in (no tokens).

    \b
    Example:
      usermgmt context show prod -o json
    """
    from usermgmt.client.contexts import ContextStore, check_name

    store = ContextStore()
    name, context = store.get(check_name(name) if name else None)
    render_one(
        context.public(name, current=store.current_name() == name), output=output, id_key="name"
    )


@app.command("remove")
def remove(name: NameArg) -> None:
    """Remove a context, ending its session on the server if it can be reached.

    \b
    Example:
      usermgmt context remove staging
    """
    from usermgmt.cli.remote import remove_context

    remove_context(name)
