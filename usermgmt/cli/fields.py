"""``--fields a,b,c``: the columns of a table and the keys of json, jsonl and csv.

The names are the record's keys as json prints them (dotted for nested ones,
``profile.phone``); an unknown name is a usage error listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from usermgmt.cli.errors import usage_error

FieldsOption = Annotated[
    str | None,
    typer.Option(
        "--fields",
        metavar="A,B,C",
        help="Only these fields, in this order: the table's columns, the keys of "
        "json/jsonl, the columns of csv.",
        show_default=False,
    ),
]


def choose_fields(value: str | None, valid: Sequence[str]) -> list[str] | None:
    """The fields ``--fields`` names, checked against ``valid``; None when not given."""
    if value is None:
        return None
    names = list(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
    unknown = [name for name in names if name not in valid]
    if not names or unknown:
        what = f"unknown field{'s' if len(unknown) != 1 else ''} {', '.join(unknown)}"
        raise usage_error(
            f"--fields: {what if unknown else 'no field named'}; valid: {', '.join(valid)}"
        )
    return names
