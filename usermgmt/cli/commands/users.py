"""`usermgmt users …`: create, find, change, remove, import and export users."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from usermgmt.cli import state
from usermgmt.cli.bulk import UsersArg
from usermgmt.cli.errors import CliError, usage_error
from usermgmt.cli.fields import FieldsOption, choose_fields
from usermgmt.cli.output import (
    Column,
    FileFormat,
    Output,
    OutputOption,
    QuietOption,
    is_terminal,
    notice,
    remember_output,
    render,
    render_one,
    short_time,
)
from usermgmt.cli.progress import progress_bar
from usermgmt.cli.prompts import confirm, read_password
from usermgmt.core.text import printable
from usermgmt.core.vocabulary import FILTER_STATUSES, ROLE_NAMES, words

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from usermgmt.core.schemas import UserOut

app = typer.Typer(
    help="Create, find, change and remove users; import and export them.",
    no_args_is_help=True,
)

PAGE_SIZE = 100  # the most the core returns per page


def complete_role(incomplete: str) -> list[str]:
    return [r for r in ROLE_NAMES if r.startswith(incomplete)]


def complete_sort(incomplete: str) -> list[str]:
    from typing import get_args

    from usermgmt.core.schemas import SortField

    return [k for k in get_args(SortField) if k.startswith(incomplete)]


# The statuses a listing filters by (--status), as Click choices.
Status = StrEnum("Status", [(s, s) for s in FILTER_STATUSES])


class OnConflict(StrEnum):
    fail = "fail"
    skip = "skip"
    update = "update"


UserArg = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="The user's UUID (or its first 8+ characters), email or username.",
        show_default=False,
    ),
]
EmailOption = Annotated[
    str, typer.Option("--email", metavar="EMAIL", help="Email address (kept in lower case).")
]
UsernameOption = Annotated[
    str | None,
    typer.Option("--username", metavar="NAME", help="Username: 3-50 of a-z 0-9 _ . -"),
]
FirstNameOption = Annotated[str | None, typer.Option("--first-name", metavar="TEXT")]
LastNameOption = Annotated[str | None, typer.Option("--last-name", metavar="TEXT")]
RoleOption = Annotated[
    list[str] | None,
    typer.Option(
        "--role",
        metavar="ROLE",
        help=f"{words(ROLE_NAMES)}; repeat for several. Default: user.",
        autocompletion=complete_role,
    ),
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]
NoPasswordOption = Annotated[
    bool,
    typer.Option(
        "--no-password",
        help="Create the user without a password; an invitation mail is queued.",
    ),
]
ActiveOption = Annotated[
    bool | None,
    typer.Option("--active/--inactive", help="Whether the user may sign in.", show_default=False),
]

USER_COLUMNS = [
    Column("ID", "id", short_id=True, keep=9),
    Column("EMAIL", "email", min_width=12, keep=9),
    Column("USERNAME", "username", min_width=8, keep=7),
    Column("KIND", "kind", keep=3),
    Column("NAME", lambda u: " ".join(p for p in (u["first_name"], u["last_name"]) if p), keep=4),
    Column("ROLES", "roles", keep=5),
    Column("MFA", lambda u: "yes" if u["mfa_enabled"] else "no", keep=2),
    Column("STATUS", "status", min_width=8, keep=8),
    Column("CREATED", lambda u: short_time(u["created_at"]), min_width=16, keep=6),
]
USER_CSV_FIELDS = [
    "id",
    "email",
    "username",
    "kind",
    "first_name",
    "last_name",
    "roles",
    "status",
    "is_active",
    "email_verified",
    "mfa_enabled",
    "locked_until",
    "last_login_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "profile.phone",
    "profile.bio",
    "profile.avatar_url",
    "profile.timezone",
    "profile.locale",
]


def user_record(user: UserOut) -> dict[str, Any]:
    return user.model_dump(mode="json")


def show_user(user: UserOut, output: Output, quiet: bool) -> None:
    render_one(user_record(user), output=output, quiet=quiet, csv_fields=USER_CSV_FIELDS)


def act_on_users(
    given: list[str],
    act: Callable[[str], UserOut],
    *,
    did: str,
    output: Output,
    quiet: bool,
) -> None:
    """``act`` on one user and print it, or on several (see ``bulk``) and print them as a list."""
    from usermgmt.cli import bulk

    if not bulk.is_several(given):
        show_user(act(given[0]), output, quiet)
        return
    refs = bulk.read_refs(given)
    tally = bulk.Tally(len(refs))
    render(
        (user_record(user) for user in bulk.each(refs, act, tally)),
        output=output,
        quiet=quiet,
        columns=USER_COLUMNS,
        csv_fields=USER_CSV_FIELDS,
        empty="No user was changed.",
    )
    tally.summarise(did)


def resolve(ref: str, *, include_deleted: bool = False) -> str:
    """The UUID of the user that ``ref`` (UUID, email or username) names."""
    return state.backend().user_reads.resolve_id(
        state.actor(), ref, include_deleted=include_deleted
    )


def user_spec(
    *,
    email: str | None = None,
    username: str | None,
    first_name: str | None,
    last_name: str | None,
    role: list[str] | None = None,
    active: bool | None,
) -> dict[str, Any]:
    """Only the fields that were given: the core keeps defaults and current values for the rest."""
    given = {
        "email": email,
        "username": username,
        "first_name": first_name,
        "last_name": last_name,
        "roles": list(role) if role else None,
        "is_active": active,
    }
    return {k: v for k, v in given.items() if v is not None}


# ---- create, ensure ----------------------------------------------------------


@app.command("create")
def create(
    email: EmailOption,
    username: UsernameOption = None,
    first_name: FirstNameOption = None,
    last_name: LastNameOption = None,
    role: RoleOption = None,
    password_stdin: PasswordStdinOption = False,
    no_password: NoPasswordOption = False,
    active: ActiveOption = None,
    service: Annotated[
        bool,
        typer.Option(
            "--service",
            help="A service account (an app, a cron job): needs --username, has no "
            "password, is never mailed, and acts through API keys (usermgmt keys create).",
        ),
    ] = False,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Create a user and print it.

    The password comes from --password-stdin, or a terminal asks for it twice
    without echo; --no-password creates an invited user instead (an invitation
    mail with a link to set the password is queued). Passwords never go on the
    command line. --service creates a service account: no password, no mail;
    its --email names who is responsible for it.

    \b
    Examples:
      usermgmt users create --email ann@example.com --role admin --password-stdin < pw.txt
      id=$(usermgmt users create --email bob@example.com --no-password -q)
      usermgmt users create --service --username purge-bot --email ops@example.com --role admin
    """
    if password_stdin and no_password:
        raise usage_error("--password-stdin and --no-password cannot be used together")
    if service and password_stdin:
        raise usage_error("a service account has no password: leave out --password-stdin")
    data = user_spec(
        email=email,
        username=username,
        first_name=first_name,
        last_name=last_name,
        role=role,
        active=active,
    )
    if service:
        data["kind"] = "service"
    svc = state.backend()  # fail on the database before asking for a password
    if not (no_password or service):
        data["password"] = read_password(
            from_stdin=password_stdin, alternatives="--password-stdin or --no-password"
        )
    user = svc.users.create(state.actor(), state.request_context(), data)
    show_user(user, output, quiet)


@app.command("ensure")
def ensure(
    email: EmailOption,
    username: UsernameOption = None,
    first_name: FirstNameOption = None,
    last_name: LastNameOption = None,
    role: RoleOption = None,
    password_stdin: PasswordStdinOption = False,
    no_password: Annotated[
        bool,
        typer.Option(
            "--no-password",
            help="Leave the password alone (the default); a new user is invited.",
        ),
    ] = False,
    active: ActiveOption = None,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Make sure a user exists as described: create it, update it to match, or leave it.

    Prints created, updated or unchanged, and exits 0 in all three cases.
    Only the options given are compared: --role replaces the whole set of
    roles, --password-stdin sets the password only if it differs. A soft-deleted
    user with this email is restored. Never prompts: made for automation.
    With -o json|jsonl|csv the user is printed with an "outcome" field first.

    \b
    Examples:
      usermgmt users ensure --email ci@example.com --role admin --password-stdin < pw.txt
      usermgmt users ensure --email ann@example.com --first-name Ann --inactive
    """
    if password_stdin and no_password:
        raise usage_error("--password-stdin and --no-password cannot be used together")
    data = user_spec(
        email=email,
        username=username,
        first_name=first_name,
        last_name=last_name,
        role=role,
        active=active,
    )
    svc = state.backend()
    if password_stdin:
        data["password"] = read_password(from_stdin=True)
    outcome, user = svc.users.ensure(state.actor(), state.request_context(), data)
    record = {"outcome": outcome, **user_record(user)}
    render_one(
        record,
        output=output,
        quiet=quiet,
        csv_fields=["outcome", *USER_CSV_FIELDS],
        human=lambda r: r["outcome"],
    )


# ---- read --------------------------------------------------------------------


@app.command("list")
def list_users(
    search: Annotated[
        str | None,
        typer.Option("--search", "-s", metavar="TEXT", help="Part of the email, username or name."),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            metavar="ROLE",
            help="Only users with this role.",
            autocompletion=complete_role,
        ),
    ] = None,
    status: Annotated[
        Status | None, typer.Option("--status", help="Only users in this state.")
    ] = None,
    include_deleted: Annotated[
        bool, typer.Option("--include-deleted", help="Also soft-deleted users.")
    ] = False,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            metavar="FIELD",
            help="created_at, email, username, name, status or last_login_at; "
            "a leading - reverses.",
            autocompletion=complete_sort,
        ),
    ] = "-created_at",
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, metavar="N", help="At most N users.  [default: 20]"),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every matching user (streams).")] = False,
    fields: FieldsOption = None,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """List users, newest first.

    --limit may be larger than a page of the core; --all with -o jsonl or csv
    streams any number of users in constant memory.

    \b
    Examples:
      usermgmt users list --search ann --status locked
      usermgmt users list --role admin -o json
      usermgmt users list --all -o csv > users.csv
      usermgmt users list --fields id,email,status,last_login_at -o csv
    """
    if all_ and limit is not None:
        raise usage_error("--limit and --all cannot be used together")
    chosen = choose_fields(fields, USER_CSV_FIELDS)
    want = None if all_ else (limit or 20)
    query: dict[str, Any] = {
        "search": search,
        "role": role,
        "status": status.value if status else None,
        "include_deleted": include_deleted,
        "sort": sort,
    }
    query = {k: v for k, v in query.items() if v is not None}
    svc = state.backend()
    actor = state.actor()
    first = svc.user_reads.list(actor, {**query, "limit": min(PAGE_SIZE, want or PAGE_SIZE)})
    total = first.meta.total

    def records() -> Iterator[dict[str, Any]]:
        data = first.data if want is None else first.data[:want]
        for user in data:
            yield user_record(user)
        remaining = None if want is None else want - len(data)
        if first.meta.next_cursor and remaining != 0:
            rest = svc.user_reads.stream(actor, {**query, "cursor": first.meta.next_cursor})
            for user in islice(rest, remaining):
                yield user_record(user)

    caption = None
    if want is not None and total > want:
        caption = f"Showing {want:,} of {total:,} users (--limit N or --all for more)"
    render(
        records(),
        output=output,
        quiet=quiet,
        columns=USER_COLUMNS,
        csv_fields=USER_CSV_FIELDS,
        caption=caption,
        empty="No users found.",
        fields=chosen,
    )


@app.command("show")
def show(
    user: UserArg,
    include_deleted: Annotated[
        bool, typer.Option("--include-deleted", help="Also find a soft-deleted user.")
    ] = False,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Show one user, found by UUID, email or username.

    \b
    Examples:
      usermgmt users show ann@example.com
      usermgmt users show ann -o json
    """
    found = state.backend().user_reads.find(state.actor(), user, include_deleted=include_deleted)
    show_user(found, output, quiet)


# ---- change ------------------------------------------------------------------


@app.command("update")
def update(
    user: UserArg,
    email: Annotated[
        str | None,
        typer.Option("--email", metavar="EMAIL", help="New email (it becomes unverified)."),
    ] = None,
    username: UsernameOption = None,
    first_name: FirstNameOption = None,
    last_name: LastNameOption = None,
    active: ActiveOption = None,
    verified: Annotated[
        bool | None,
        typer.Option(
            "--verified/--unverified", help="Mark the email verified or not.", show_default=False
        ),
    ] = None,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Change some fields of a user; the others stay as they are.

    Deactivating a user signs them out everywhere. Roles have their own
    commands: usermgmt roles grant|revoke.

    \b
    Examples:
      usermgmt users update ann@example.com --last-name Smith
      usermgmt users update ann --inactive
    """
    data = user_spec(
        email=email, username=username, first_name=first_name, last_name=last_name, active=active
    )
    if verified is not None:
        data["email_verified"] = verified
    if not data:
        raise usage_error("nothing to change: give at least one option (see --help)")
    uid = resolve(user)
    updated = state.backend().users.update(state.actor(), state.request_context(), uid, data)
    show_user(updated, output, quiet)


@app.command("delete")
def delete(
    users: UsersArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    ignore_missing: Annotated[
        bool,
        typer.Option(
            "--ignore-missing",
            help="A user that does not exist or is deleted already is not an error.",
        ),
    ] = False,
) -> None:
    """Soft-delete users: they can no longer sign in, and all their sessions end.

    The record stays (the email stays taken) and `usermgmt users restore`
    brings it back. Asks first on a terminal, unless --yes (once for several
    users). Several IDs, or - to read them from stdin, are deleted one by one;
    one that fails is named and the others go on (exit: the first failure's).

    \b
    Examples:
      usermgmt users delete ann@example.com
      usermgmt users delete 1b4e28ba --yes
      usermgmt users list -q --status inactive | usermgmt users delete - --yes
    """
    from usermgmt.cli import bulk
    from usermgmt.core.errors import NotFound

    svc = state.backend()
    actor, ctx = state.actor(), state.request_context()
    if not bulk.is_several(users):
        try:
            found = svc.user_reads.find(actor, users[0])
        except NotFound:
            if not ignore_missing:
                raise
            notice(f"No user {users[0]}: nothing to delete.")
            return
        confirm(f"Delete user {found.email} ({found.id})?", yes=yes)
        svc.users.delete(actor, ctx, str(found.id))
        notice(f"Deleted user {found.email} ({found.id}); `usermgmt users restore` undoes it.")
        return
    refs = bulk.read_refs(users)
    confirm(f"Delete {len(refs)} users?", yes=yes)

    def delete_one(ref: str) -> None:
        svc.users.delete(actor, ctx, str(svc.user_reads.find(actor, ref).id))

    tally = bulk.Tally(len(refs))
    for _ in bulk.each(refs, delete_one, tally, ignore_missing=ignore_missing):
        pass
    tally.summarise("deleted")


@app.command("restore")
def restore(
    users: UsersArg, output: OutputOption = Output.table, quiet: QuietOption = False
) -> None:
    """Bring back soft-deleted users.

    \b
    Examples:
      usermgmt users restore ann@example.com
      usermgmt users restore 1b4e28ba 7c9e6679
    """

    def restore_one(ref: str) -> UserOut:
        uid = resolve(ref, include_deleted=True)
        return state.backend().users.restore(state.actor(), state.request_context(), uid)

    act_on_users(users, restore_one, did="restored", output=output, quiet=quiet)


@app.command("lock")
def lock(
    users: UsersArg,
    minutes: Annotated[
        int | None,
        typer.Option(
            "--minutes", min=1, metavar="N", help="Lock for N minutes (default: until unlocked)."
        ),
    ] = None,
    output: OutputOption = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Lock users' accounts; their sessions end.

    \b
    Examples:
      usermgmt users lock ann@example.com
      usermgmt users lock ann bob --minutes 60
    """

    def lock_one(ref: str) -> UserOut:
        uid = resolve(ref)
        return state.backend().users.lock(state.actor(), state.request_context(), uid, minutes)

    act_on_users(users, lock_one, did="locked", output=output, quiet=quiet)


@app.command("unlock")
def unlock(
    users: UsersArg, output: OutputOption = Output.table, quiet: QuietOption = False
) -> None:
    """Unlock users' accounts and clear their failed-login count.

    \b
    Examples:
      usermgmt users unlock ann@example.com
      usermgmt users list -q --status locked | usermgmt users unlock -
    """

    def unlock_one(ref: str) -> UserOut:
        uid = resolve(ref)
        return state.backend().users.unlock(state.actor(), state.request_context(), uid)

    act_on_users(users, unlock_one, did="unlocked", output=output, quiet=quiet)


@app.command("set-password")
def set_password(user: UserArg, password_stdin: PasswordStdinOption = False) -> None:
    """Set a user's password; all their sessions end and they are told by mail.

    The password comes from --password-stdin, or a terminal asks for it twice
    without echo.

    \b
    Examples:
      usermgmt users set-password ann@example.com --password-stdin < pw.txt
      printf '%s\\n' "$PW" | usermgmt users set-password ann --password-stdin
    """
    uid = resolve(user)
    password = read_password(from_stdin=password_stdin)
    state.backend().users.set_password(state.actor(), state.request_context(), uid, password)
    notice(f"Password set for {user}; their sessions were ended.")


# ---- import, export ----------------------------------------------------------


def _open_input(file: str) -> tuple[Any, str, int | None]:
    """The binary stream, its name for messages, and its size if known."""
    if file == "-":
        raw = sys.stdin.buffer
        return raw, "<stdin>", None
    try:
        raw = open(file, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise usage_error(f"cannot read {file}: {exc.strerror}") from None
    try:
        size = os.fstat(raw.fileno()).st_size
    except OSError:
        size = None
    return raw, file, size or None


@app.command("import")
def import_users(
    file: Annotated[
        str,
        typer.Argument(metavar="FILE", help="A CSV, JSON or JSONL file; - reads stdin."),
    ],
    fmt: Annotated[
        FileFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="The file's format. Default: from its extension, else from its first character.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and report; write nothing.")
    ] = False,
    on_conflict: Annotated[
        OnConflict,
        typer.Option(
            "--on-conflict",
            help="When the email exists or a row is bad: fail (write nothing), "
            "skip the row, or update the user.",
        ),
    ] = OnConflict.fail,
    max_errors: Annotated[
        int,
        typer.Option(
            "--max-errors",
            min=0,
            metavar="N",
            help="Stop checking at the N-th bad row, write nothing, and say where it "
            "stopped and how many rows after it were not checked. 0: check every row "
            "(the report then holds every bad row).",
        ),
    ] = 1000,  # bounds the memory the report holds; 0 lifts it
    output: OutputOption = Output.table,
) -> None:
    """Import users from a file, in one transaction.

    Columns (CSV header) or keys (JSON): email (required), username,
    first_name, last_name, roles (';'-separated in CSV; default user),
    is_active, email_verified, phone, bio, avatar_url, timezone, locale, and
    either password_hash (an existing bcrypt hash, kept as it is) or password
    (checked against the password policy, then hashed on every core). The
    columns only an export has (id, created_at, last_login_at, deleted_at)
    are read and ignored, so an export imports back. --on-conflict update
    changes only the fields a row gives (an empty CSV cell gives nothing).

    Files are UTF-8, with or without a BOM. A bad row is reported with its line
    number and reason. With --on-conflict fail (the default) nothing is written
    if any row is bad or any email exists; skip and update write the good rows.
    After --max-errors bad rows (default 1000) the import stops and writes
    nothing, whatever --on-conflict says. Ctrl-C writes nothing. Exit 2 when
    any row was bad.

    \b
    Examples:
      usermgmt users import users.csv --dry-run
      usermgmt users import users.jsonl --on-conflict update
      gunzip -c users.csv.gz | usermgmt users import - --format csv
    """
    from usermgmt.cli.readers import (
        Source,
        format_from_name,
        read_csv,
        read_json_array,
        read_jsonl,
        sniff_format,
    )
    from usermgmt.core.services.transfer import EXPORT_ONLY, ImportRow

    svc = state.backend()
    raw, name, size = _open_input(file)
    try:
        source = Source(raw, name)
        kind = fmt.value if fmt else (format_from_name(name) or sniff_format(source))
        if not fmt and kind == "json" and sniff_format(source) == "jsonl":
            kind = "jsonl"  # a .json file of objects, one per line
        if kind == "csv":
            rows = read_csv(source, set(ImportRow.model_fields) | EXPORT_ONLY)
        elif kind == "jsonl":
            rows = read_jsonl(source)
        else:
            rows = read_json_array(source)
        with progress_bar("Importing", total=size, show_bytes=size is not None) as bar:
            done = 0

            def progress(n: int) -> None:
                nonlocal done
                done += n
                bar.update(completed=source.position, rows=done)

            report = svc.transfer.import_users(
                state.actor(),
                state.request_context(),
                rows,
                on_conflict=on_conflict.value,
                dry_run=dry_run,
                progress=progress,
                max_errors=max_errors or None,
            )
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()
    _print_report(report, output, name)


def _print_report(report: Any, output: Output, name: str) -> None:
    record = {
        "file": name,
        "rows": report.rows,
        "created": report.created,
        "updated": report.updated,
        "skipped": report.skipped,
        "errors": [{"line": e.line, "reason": e.reason} for e in report.errors],
        "committed": report.committed,
        "dry_run": report.dry_run,
        "stopped_at_line": report.stopped_at_line,
        "not_checked": report.not_checked,
    }
    if Output(output).for_people:
        for error in report.errors:
            sys.stderr.write(printable(f"{name}: line {error.line}: {error.reason}") + "\n")
    render_one(record, output=output, human=lambda r: _summary(report))
    if report.errors:
        n = len(report.errors)
        rows = f"{n} bad row{'s' if n != 1 else ''}"
        if report.stopped:
            raise CliError(
                "VALIDATION_ERROR",
                f"stopped at line {report.stopped_at_line} after {rows} (--max-errors); "
                f"{report.not_checked:,} row{'s' if report.not_checked != 1 else ''} after it "
                "not checked; nothing was imported",
            )
        if report.committed:
            raise CliError("VALIDATION_ERROR", f"{rows} skipped; the other rows were imported")
        raise CliError("VALIDATION_ERROR", f"{rows}; nothing was imported")


def _summary(report: Any) -> str:
    counts = f"{report.created:,} created, {report.updated:,} updated, {report.skipped:,} skipped"
    if report.dry_run:
        verdict = "dry run, nothing was written"
    elif report.committed:
        verdict = "imported"
    else:
        verdict = "nothing was written"
    bad = f", {len(report.errors):,} bad" if report.errors else ""
    if report.stopped:
        verdict = (
            f"stopped at line {report.stopped_at_line:,}; {report.not_checked:,} rows after it "
            "not checked; nothing was written"
        )
    return f"{report.rows:,} rows: {counts}{bad} ({verdict})"


@app.command("export")
def export_users(
    fmt: Annotated[
        FileFormat | None,
        typer.Option(
            "--format",
            "-o",
            "--output",
            help="csv, json or jsonl. Default: from --output-file's extension, else jsonl.",
            callback=remember_output,
            show_default=False,
        ),
    ] = None,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output-file",
            "-O",
            metavar="FILE",
            help="Write here (atomically, mode 600) instead of stdout.",
            dir_okay=False,
        ),
    ] = None,
    include_deleted: Annotated[
        bool, typer.Option("--include-deleted", help="Also soft-deleted users.")
    ] = False,
    include_password_hashes: Annotated[
        bool,
        typer.Option(
            "--include-password-hashes",
            help="Add each bcrypt hash (password_hash). Without it, importing the "
            "export back loses the passwords.",
        ),
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Export users, oldest first, streaming with constant memory.

    Writes what `usermgmt users import` reads back: email, username,
    first_name, last_name, roles, is_active, email_verified and the profile
    (phone, bio, avatar_url, timezone, locale), plus id, created_at,
    last_login_at and deleted_at, which import ignores.

    A round trip through import keeps all of that user data and loses: the
    passwords, unless --include-password-hashes (then the bcrypt hashes are
    kept as they are); the ids and timestamps (new ones are made); the
    deleted and locked state (deleted users come back active); and sessions.

    \b
    Examples:
      usermgmt users export --output-file users.csv
      usermgmt users export -o jsonl --include-password-hashes > backup.jsonl
    """
    if fmt is None:
        guessed = None
        if output_file is not None:
            from usermgmt.cli.readers import format_from_name

            guessed = format_from_name(output_file.name)
        fmt = FileFormat(guessed or "jsonl")
    from usermgmt.core.services.transfer import EXPORT_FIELDS

    fields = EXPORT_FIELDS + (["password_hash"] if include_password_hashes else [])
    svc = state.backend()
    actor = state.actor()
    records = svc.transfer.export_users(
        actor,
        include_deleted=include_deleted,
        include_password_hash=include_password_hashes,
        ctx=state.request_context(),
    )
    show_bar = is_terminal(sys.stderr) and (output_file is not None or not is_terminal(sys.stdout))
    total = None
    if show_bar:
        query = {"limit": 1, "include_deleted": include_deleted}
        total = svc.user_reads.list(actor, query).meta.total
    with progress_bar("Exporting", total=total, enabled=show_bar) as bar:

        def counted() -> Iterator[dict[str, Any]]:
            for n, record in enumerate(records, start=1):
                yield record
                if n % 1000 == 0:
                    bar.update(completed=n, rows=n)

        if output_file is None:
            count = render(counted(), output=fmt.value, quiet=quiet, csv_fields=fields)
        else:
            count = _write_atomically(output_file, counted(), fmt.value, quiet, fields)
    where = f" to {output_file}" if output_file else ""
    notice(f"Exported {count:,} users{where}.")


def _write_atomically(path: Path, records: Any, fmt: str, quiet: bool, fields: list[str]) -> int:
    """Write to a temporary file next to ``path`` (mode 600), then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as fh:
            count = render(records, output=fmt, quiet=quiet, csv_fields=fields, stream=fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
