"""The CLI shows and filters users by the core's one status, and offers the core's words."""

from __future__ import annotations

import csv
import io

from usermgmt.cli.commands.users import Status, complete_role
from usermgmt.core.vocabulary import FILTER_STATUSES, ROLE_NAMES, words


def test_the_choices_are_the_vocabulary():
    assert [s.value for s in Status] == list(FILTER_STATUSES)
    assert complete_role("") == list(ROLE_NAMES)
    assert complete_role("mo") == ["moderator"]
    assert words(ROLE_NAMES) == "user, moderator or admin"


def test_each_user_shows_one_status(cli, services, operator, ctx):
    made = {
        word: services.users.create(operator, ctx, {"email": f"{word}@example.com"})
        for word in ("unverified", "inactive", "locked", "active", "deleted")
    }
    uid = {word: str(user.id) for word, user in made.items()}
    services.users.update(operator, ctx, uid["inactive"], {"is_active": False})
    services.users.update(operator, ctx, uid["active"], {"email_verified": True})
    services.users.lock(operator, ctx, uid["locked"])  # and unverified: locked says more
    services.users.delete(operator, ctx, uid["deleted"])

    listed = cli("users", "list", "--include-deleted", "-o", "json").json()
    assert {u["email"]: u["status"] for u in listed} == {
        f"{word}@example.com": word for word in made
    }
    table = cli("users", "list", "--include-deleted").stdout
    for word in made:
        row = next(line for line in table.splitlines() if f"{word}@example.com" in line)
        assert row.split()[-3] == word  # STATUS, then CREATED (date and time)
    rows = csv.DictReader(io.StringIO(cli("users", "list", "-o", "csv").stdout))
    assert {r["email"]: r["status"] for r in rows}["locked@example.com"] == "locked"
    shown = cli("users", "show", "locked@example.com", "-o", "json").json()
    assert shown["status"] == "locked"
