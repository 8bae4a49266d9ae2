"""`usermgmt tokens …`: housekeeping of tokens and sessions."""

from __future__ import annotations

from typing import Annotated

import typer

from usermgmt.cli import state
from usermgmt.cli.output import Column, Output, OutputOption, render
from usermgmt.cli.progress import progress_bar

app = typer.Typer(help="Purge spent tokens and dead sessions.", no_args_is_help=True)


@app.command("purge")
def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    output: OutputOption = Output.table,
) -> None:
    """Delete expired or used reset, verification and invitation tokens, expired
    sessions, sessions revoked over a day ago, sent mail past its retention, and
    API keys revoked or expired longer ago than theirs (each key's expiry is
    audited first, once).

    Works in small batches, so it never holds a long lock and two overlapping
    runs share the work. Prints what was (or, with --dry-run, would be)
    deleted. Exit 0, also when there was nothing to delete.

    \b
    Examples:
      usermgmt tokens purge --dry-run
      15 3 * * *  usermgmt tokens purge -o json >> /var/log/usermgmt-purge.log
    """
    done = 0
    with progress_bar("Purging", unit="rows deleted") as bar:

        def progress(kind: str, n: int) -> None:
            nonlocal done
            done += n
            bar.update(rows=done, description=f"Purging {kind.replace('_', ' ')}")

        report = state.backend().maintenance.purge(
            state.actor(), state.request_context(), dry_run=dry_run, progress=progress
        )
    header = "WOULD DELETE" if dry_run else "DELETED"
    render(
        (
            {"kind": kind, "count": count, "dry_run": dry_run}
            for kind, count in report.counts.items()
        ),
        output=output,
        id_key="kind",
        columns=[Column("KIND", "kind"), Column(header, "count")],
        caption=f"Dry run: nothing was deleted (total {report.total:,})."
        if dry_run
        else f"Total {report.total:,}.",
    )
