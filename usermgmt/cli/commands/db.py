"""`usermgmt db …`: the database schema (Alembic migrations), through the core's
migration service (over services built without the schema check)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from usermgmt.cli import state
from usermgmt.cli.errors import usage_error
from usermgmt.cli.output import Output, OutputOption, render_one
from usermgmt.cli.prompts import confirm

if TYPE_CHECKING:
    from collections.abc import Iterator

    from usermgmt.core.services.migrations import MigrationService, SchemaState

app = typer.Typer(
    help="Upgrade, downgrade and check the database schema.",
    no_args_is_help=True,
)


def _migrations() -> MigrationService:
    state.current().refuse_remote("`usermgmt db`")
    return state.services(check_schema=False).migrations


@contextmanager
def _revision_errors() -> Iterator[None]:
    """A revision the migrations do not know is a usage error (a bad REV)."""
    from usermgmt.core.errors import ValidationError

    try:
        yield
    except ValidationError as exc:
        problems = exc.field_errors.get("revision")
        if not problems:
            raise
        raise usage_error(problems[0]) from None


def _state_record(
    current: SchemaState | None = None, before: str | None = None, *, with_before: bool = False
) -> dict[str, Any]:
    current = current or _migrations().state()
    record: dict[str, Any] = {}
    if with_before:
        record["before"] = before
    record.update(
        {"current": current.current, "head": current.head, "up_to_date": current.up_to_date}
    )
    return record


def _describe(record: dict[str, Any]) -> str:
    current = record["current"] or "empty (no schema)"
    if record["up_to_date"]:
        return f"{current} (head)"
    return f"{current}; the code needs {record['head']}: run `usermgmt db upgrade`"


@app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Argument(metavar="REV", help="The revision to reach.")] = "head",
    output: OutputOption = Output.table,
) -> None:
    """Migrate the schema up to REV (default: the newest). Safe to run again.

    \b
    Examples:
      usermgmt db upgrade
      USERMGMT_DATABASE_URL=postgresql+psycopg://app@db/users usermgmt db upgrade
    """
    migrations = _migrations()
    before = migrations.state().current
    with _revision_errors():
        after = migrations.upgrade(revision)
    record = _state_record(after, before, with_before=True)
    render_one(record, output=output, human=lambda r: _moved(r))


@app.command("downgrade")
def downgrade(
    revision: Annotated[
        str,
        typer.Argument(metavar="REV", help="The revision to go back to; base removes every table."),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    output: OutputOption = Output.table,
) -> None:
    """Migrate the schema down to REV. Data in dropped tables or columns is lost.

    Asks first on a terminal, unless --yes.

    \b
    Examples:
      usermgmt db downgrade base --yes
    """
    migrations = _migrations()
    before = migrations.state().current
    confirm(f"Downgrade the database schema from {before or 'nothing'} to {revision}?", yes=yes)
    with _revision_errors():
        after = migrations.downgrade(revision)
    record = _state_record(after, before, with_before=True)
    render_one(record, output=output, human=lambda r: _moved(r))


def _moved(record: dict[str, Any]) -> str:
    if record["before"] == record["current"]:
        return f"Schema unchanged: {_describe(record)}"
    return f"Schema {record['before'] or 'empty'} -> {_describe(record)}"


@app.command("current")
def current(output: OutputOption = Output.table) -> None:
    """Print the schema revision of the database and whether it is the newest.

    \b
    Example:
      usermgmt db current -o json
    """
    render_one(_state_record(), output=output, human=_describe)


@app.command("check")
def check(output: OutputOption = Output.table) -> None:
    """Exit 0 if the schema is up to date, 5 if it is behind (run `usermgmt db upgrade`).

    \b
    Example:
      usermgmt db check || usermgmt db upgrade
    """
    from usermgmt.core.errors import SchemaOutOfDate

    record = _state_record()
    if record["up_to_date"]:
        render_one(record, output=output, human=lambda r: f"Schema up to date: {r['current']}")
        return
    if not Output(output).for_people:
        render_one(record, output=output)
    raise SchemaOutOfDate(
        f"Database schema is at {record['current'] or 'nothing'}, the code needs "
        f"{record['head']}; run `usermgmt db upgrade`"
    )
