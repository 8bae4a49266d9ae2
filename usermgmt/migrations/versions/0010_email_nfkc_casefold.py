"""Emails in their new stored form: NFKC, then case folding

Emails were stored lower-cased; they are now compared after Unicode NFKC
normalisation and case folding (usermgmt.core.schemas.normalise_identifier), so
a fullwidth or otherwise compatible look-alike of an address is the same
account. Rows whose stored form changes under that rule (``ß`` becomes ``ss``,
fullwidth letters become ASCII; plain ASCII never changes) are rewritten, or
their owners could no longer log in or reset a password: every lookup now
normalises what is typed. Their search text is rebuilt with them (the ORM keeps
it, not a trigger), and so are the addresses of pending reset, verification and
invitation tokens, which must still match the account's.

When two accounts would end up with the same address, nothing is changed and
the upgrade stops with a Conflict naming them: they are one account under the
new rule, and which one keeps the address is the operator's decision (change
the other one's email with the previous version, then upgrade again).

The rule is written out here rather than imported, so this migration keeps
doing what it did when the application's rule changes. Downgrading leaves the
addresses as they are: the previous version stores and finds them lower-cased,
which these are.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:00:00.000000
"""

import unicodedata
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from usermgmt.core.errors import Conflict

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

users = sa.table(
    "users",
    sa.column("id", sa.Uuid),
    sa.column("email", sa.String),
    sa.column("username", sa.String),
    sa.column("first_name", sa.String),
    sa.column("last_name", sa.String),
    sa.column("search_text", sa.Text),
)
one_time_tokens = sa.table(
    "one_time_tokens",
    sa.column("user_id", sa.Uuid),
    sa.column("email", sa.String),
    sa.column("used_at", sa.DateTime),
)


def _fold(email: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).casefold()).strip()


def _search_text(*parts: str | None) -> str:
    return " ".join(p.lower() for p in parts if p)


def upgrade() -> None:
    bind = op.get_bind()
    # Streamed: only the (few) rows whose form changes are kept.
    everyone = sa.select(users.c.id, users.c.email).execution_options(
        stream_results=True, yield_per=2000
    )
    changed = {}
    for uid, email in bind.execute(everyone):
        folded = _fold(email)
        if folded != email:
            changed[uid] = (email, folded)
    owners: dict[str, set] = defaultdict(set)
    for uid, (_old, folded) in changed.items():
        owners[folded].add(uid)
        holders = bind.execute(sa.select(users.c.id).where(users.c.email == folded)).scalars()
        owners[folded].update(holders)
    clashes = [ids for ids in owners.values() if len(ids) > 1]
    if clashes:
        named = "; ".join(" and ".join(sorted(map(str, ids))) for ids in clashes)
        raise Conflict(
            "Some accounts' emails are the same address after Unicode normalisation (NFKC, "
            f"then case folding): users {named}. Change the email of all but one of each "
            "(usermgmt users update ID --email ...) and run `usermgmt db upgrade` again."
        )
    for uid, (old, folded) in changed.items():
        names = bind.execute(
            sa.select(users.c.username, users.c.first_name, users.c.last_name).where(
                users.c.id == uid
            )
        ).one()
        bind.execute(
            users.update()
            .where(users.c.id == uid)
            .values(email=folded, search_text=_search_text(folded, *names))
        )
        bind.execute(
            one_time_tokens.update()
            .where(one_time_tokens.c.user_id == uid)
            .where(one_time_tokens.c.email == old)
            .where(one_time_tokens.c.used_at.is_(None))
            .values(email=folded)
        )


def downgrade() -> None:
    pass
