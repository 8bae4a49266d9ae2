"""The command reference in docs/cli.md, generated from ``--help``.

    python -m usermgmt.cli.docs --write docs/cli.md   # regenerate the reference
    python -m usermgmt.cli.docs --check docs/cli.md   # exit 1 if it is stale

Only the part between the two markers is generated; the rest of the file
(the guide and the decisions) is written by hand. A test runs ``--check``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BEGIN = "<!-- BEGIN GENERATED REFERENCE (python -m usermgmt.cli.docs --write docs/cli.md) -->"
END = "<!-- END GENERATED REFERENCE -->"
WIDTH = 88


def commands() -> Iterator[tuple[list[str], Any]]:
    """Every command path and its Click command, in the order `--help` lists them."""
    from typer.main import get_command

    from usermgmt.cli.app import PROG_NAME, app

    def walk(path: list[str], command: Any) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            if not getattr(sub, "hidden", False):
                yield from walk([*path, name], sub)

    yield from walk([PROG_NAME], get_command(app))


def help_text(path: list[str]) -> str:
    from typer.testing import CliRunner

    from usermgmt.cli.app import PROG_NAME, app

    result = CliRunner().invoke(
        app, [*path[1:], "--help"], prog_name=PROG_NAME, terminal_width=WIDTH, color=False
    )
    if result.exit_code != 0:
        raise RuntimeError(f"{' '.join(path)} --help failed: {result.output}")
    return result.stdout.rstrip() + "\n"


@functools.cache
def reference() -> str:
    parts = [BEGIN, "", "## Command reference", ""]
    for path, _command in commands():
        title = " ".join(path)
        parts += [f"### `{title}`", "", "```text", help_text(path).rstrip(), "```", ""]
    parts.append(END)
    return "\n".join(parts) + "\n"


def splice(document: str, generated: str) -> str:
    if BEGIN in document and END in document:
        head = document[: document.index(BEGIN)]
        tail = document[document.index(END) + len(END) :].lstrip("\n")
        return head + generated + (("\n" + tail) if tail else "")
    return document.rstrip("\n") + "\n\n" + generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m usermgmt.cli.docs", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", metavar="FILE", help="Regenerate the reference in FILE.")
    mode.add_argument("--check", metavar="FILE", help="Exit 1 if FILE's reference is stale.")
    args = parser.parse_args(argv)
    generated = reference()
    if args.write:
        path = Path(args.write)
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(splice(current, generated), encoding="utf-8")
        return 0
    if args.check:
        path = Path(args.check)
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if splice(current, generated) != current:
            sys.stderr.write(f"{path} is stale: run python -m usermgmt.cli.docs --write {path}\n")
            return 1
        return 0
    sys.stdout.write(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
