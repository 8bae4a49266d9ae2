"""`usermgmt keys …`: API keys for apps and cron jobs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from usermgmt.cli import state
from usermgmt.cli.commands.users import resolve
from usermgmt.cli.errors import usage_error
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
from usermgmt.core.vocabulary import API_SCOPES, words

app = typer.Typer(
    help="Create, list and revoke API keys (for apps, cron jobs and remote mode).",
    no_args_is_help=True,
)

# Every field of a key, in the order csv prints them (the secret only on create).
KEY_FIELDS = [
    "id",
    "name",
    "prefix",
    "scopes",
    "state",
    "user_id",
    "owner",
    "owner_kind",
    "created_at",
    "created_by",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "revoked_at",
]
KEY_COLUMNS = [
    Column("ID", "id", no_wrap=True),
    Column("NAME", "name"),
    Column("PREFIX", "prefix", no_wrap=True),
    Column("OWNER", lambda k: k["owner"] + (" (service)" if k["owner_kind"] == "service" else "")),
    Column("SCOPES", "scopes"),
    Column("STATE", "state"),
    Column("CREATED", lambda k: short_time(k["created_at"]), no_wrap=True),
    Column("EXPIRES", lambda k: short_time(k["expires_at"]) or "never", no_wrap=True),
    Column("LAST USED", lambda k: short_time(k["last_used_at"]), no_wrap=True),
    Column("FROM", "last_used_ip"),
]


def complete_scope(incomplete: str) -> list[str]:
    return [s for s in API_SCOPES if s.startswith(incomplete)]


@app.command("create")
def create(
    name: Annotated[
        str, typer.Option("--name", metavar="TEXT", help="What the key is for (up to 100).")
    ],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            metavar="SCOPE",
            help=f"{words(API_SCOPES)}; repeat for several.",
            autocompletion=complete_scope,
        ),
    ],
    expires_in: Annotated[
        int | None,
        typer.Option(
            "--expires-in",
            metavar="DAYS",
            help="Days until the key expires (1-3650). Default: it never expires.",
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="ID",
            help="The owner's UUID, email or username (a service account, say). "
            "Default: yourself (remote mode); required when working on the database.",
        ),
    ] = None,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Create an API key and print its secret, this once.

    Only a digest of the key is stored: copy the secret now. The key acts with
    the intersection of its scopes and its owner's roles at the time of use.
    With -q only the secret is printed, for a script to keep.

    \b
    Examples:
      usermgmt keys create --name nightly-purge --scope maintenance --user purge-bot
      KEY=$(usermgmt keys create --name ci --scope users:read --expires-in 90 --user ci -q)
    """
    svc = state.backend()
    actor = state.actor()
    data: dict[str, Any] = {"name": name, "scopes": list(scope)}
    if expires_in is not None:
        data["expires_in_days"] = expires_in
    if user is not None:
        data["user_id"] = resolve(user)
    elif actor.user_id is None and state.current().remote_target() is None:
        # On the database the operator is nobody; through a server the key is the
        # logged-in person's own.
        raise usage_error("--user is required: name the user who will own the key")
    created = svc.api_keys.create(actor, state.request_context(), data)
    record = {**created.key.model_dump(mode="json"), "secret": created.secret}
    if quiet:
        render_one(record, output=output, quiet=True, id_key="secret")
        return
    fmt = Output(output)
    if fmt.for_people:
        render_one(
            {
                "id": record["id"],
                "name": record["name"],
                "owner": record["owner"],
                "scopes": record["scopes"],
                "expires": record["expires_at"] or "never",
                "secret": record["secret"],
            },
            output=output,
        )
        notice("Copy the secret now: it is not shown again.")
        return
    shaped = {"key": created.key.model_dump(mode="json"), "secret": created.secret}
    render_one(
        shaped if fmt in (Output.json, Output.jsonl) else record,
        output=output,
        csv_fields=[*KEY_FIELDS, "secret"],
    )


@app.command("list")
def list_keys(
    user: Annotated[
        str | None,
        typer.Option("--user", metavar="ID", help="Only this user's keys (UUID, email, username)."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every user's keys.")] = False,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """List API keys: name, prefix, owner, scopes, state, created, expires, last use.

    Without --user or --all: your own keys in remote mode, every key when
    working on the database. Revoked and expired keys are listed until
    `usermgmt tokens purge` removes them after the retention period.

    \b
    Examples:
      usermgmt keys list --user purge-bot
      usermgmt keys list --all -o json
    """
    if user is not None and all_:
        raise usage_error("--user and --all cannot be used together")
    svc = state.backend()
    query: dict[str, Any] = {"all": all_}
    if user is not None:
        query["user_id"] = resolve(user, include_deleted=True)
    keys = svc.api_keys.list(state.actor(), query).data
    render(
        (k.model_dump(mode="json") for k in keys),
        output=output,
        quiet=quiet,
        columns=KEY_COLUMNS,
        csv_fields=KEY_FIELDS,
        empty="No API keys.",
    )


@app.command("revoke")
def revoke(
    key_id: Annotated[
        str, typer.Argument(metavar="KEY_ID", help="The key's id.", show_default=False)
    ],
) -> None:
    """Revoke an API key: it fails on its next use, on every server.

    \b
    Examples:
      usermgmt keys revoke 6f1c2d3e-4b5a-4c3d-9e8f-7a6b5c4d3e2f
    """
    svc = state.backend()
    if svc.api_keys.revoke(state.actor(), state.request_context(), key_id):
        notice(f"Revoked API key {key_id}.")
    else:
        notice(f"API key {key_id} was already revoked.")
