"""A user's status: one word, by one rule, for every representation, filter and table.

The first of these that holds names it; a user none of them holds is active:

1. deleted    - soft-deleted
2. inactive   - deactivated (may not sign in)
3. locked     - an admin lock that is not over yet
4. unverified - the email address is not verified

The rule is read in Python (:func:`status_of`, for the user representation)
and in SQL (:func:`where_status`, for list filters) in the order PRECEDENCE
gives, so a listing filtered by a status holds exactly the users shown with
that status.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from usermgmt.core.vocabulary import UserStatus

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

# The conditions in the order they decide; "active" is what is left.
PRECEDENCE: tuple[UserStatus, ...] = ("deleted", "inactive", "locked", "unverified")


def status_of(
    *,
    deleted_at: datetime | None,
    is_active: bool,
    locked_until: datetime | None,
    email_verified: bool,
    now: datetime,
) -> UserStatus:
    """The status of a user in this state at ``now`` (the caller's clock)."""
    # PRECEDENCE, spelt out: this runs for every user read (tests/core/test_status.py
    # proves it agrees with where_status on every combination).
    if deleted_at is not None:
        return "deleted"
    if not is_active:
        return "inactive"
    if locked_until is not None and locked_until > now:
        return "locked"
    if not email_verified:
        return "unverified"
    return "active"


def status_at(user: Any, now: datetime) -> UserStatus:
    """The status of a user (a ``UserOut`` or the model) at ``now``."""
    return status_of(
        deleted_at=user.deleted_at,
        is_active=user.is_active,
        locked_until=user.locked_until,
        email_verified=user.email_verified,
        now=now,
    )


def _conditions(user: Any, now: datetime) -> dict[UserStatus, ColumnElement[bool]]:
    """Each condition of PRECEDENCE over the columns of ``user`` (the User model)."""
    from sqlalchemy import and_

    return {
        "deleted": user.deleted_at.is_not(None),
        "inactive": user.is_active.is_(False),
        "locked": and_(user.locked_until.is_not(None), user.locked_until > now),
        "unverified": user.email_verified_at.is_(None),
    }


def status_expression(user: Any, now: Any) -> ColumnElement[str]:
    """SQL for the status word of each user at ``now`` (a time or a bound parameter):
    the first condition of PRECEDENCE that holds, else active."""
    from sqlalchemy import case

    conditions = _conditions(user, now)
    return case(*((conditions[s], s) for s in PRECEDENCE), else_="active")


def where_status(status: UserStatus, user: Any, now: datetime) -> ColumnElement[bool]:
    """SQL that holds for exactly the users whose status is ``status`` at ``now``.

    ``user`` is the User model (or an alias of it). A status holds when its own
    condition does and none before it in PRECEDENCE; active when none does.
    """
    from sqlalchemy import and_, not_

    conditions = _conditions(user, now)
    if status == "active":
        return and_(*(not_(c) for c in conditions.values()))
    position = PRECEDENCE.index(status)  # ValueError for a word that is no status
    earlier = [not_(conditions[s]) for s in PRECEDENCE[:position]]
    return and_(*earlier, conditions[status])
