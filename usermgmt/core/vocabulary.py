"""The words of the product: role names and user statuses, defined once.

The input models, the API's schema, the CLI's choices and the console's filters
all take their words from here. Migration 0001 seeds the roles table from a
copy of its own (a migration never imports code that may change later).
Standard library only, so a face may import it at start-up for free.
"""

from __future__ import annotations

from typing import Literal, get_args

RoleName = Literal["user", "moderator", "admin"]
# From the least to the most allowed.
ROLE_NAMES: tuple[RoleName, ...] = get_args(RoleName)
ROLE_DESCRIPTIONS: dict[RoleName, str] = {
    "user": "Signed-in user: own profile only",
    "moderator": "Reads all users, edits non-admin users (not roles)",
    "admin": "Everything, including roles, sessions and the audit log",
}

# What a user's status says, in the order the contracts list them (the rule that
# picks one is usermgmt.core.status).
UserStatus = Literal["active", "inactive", "locked", "unverified", "deleted"]
STATUSES: tuple[UserStatus, ...] = get_args(UserStatus)
# What a listing filters by: every status but deleted (deleted users are listed with
# include_deleted).
FILTER_STATUSES: tuple[UserStatus, ...] = tuple(s for s in STATUSES if s != "deleted")
StatusFilter = Literal[FILTER_STATUSES]  # type: ignore[valid-type]


def words(names: tuple[str, ...], last: str = "or") -> str:
    """``a, b or c``: a vocabulary in a sentence (help texts, messages)."""
    return f"{', '.join(names[:-1])} {last} {names[-1]}" if len(names) > 1 else "".join(names)


# What kind of account a user is: a person signs in with a password; a service
# account (an app, a cron job) never does, gets no mail, and acts through API keys.
UserKind = Literal["person", "service"]
USER_KINDS: tuple[UserKind, ...] = get_args(UserKind)

# What an API key may be used for. A key acts with the intersection of its scopes and
# its owner's current roles: a scope opens a part of the permission matrix, the
# owner's roles still decide within it. ``admin`` stands for every scope.
ApiScope = Literal[
    "users:read",
    "users:write",
    "roles:manage",
    "sessions:manage",
    "audit:read",
    "maintenance",
    "admin",
]
API_SCOPES: tuple[ApiScope, ...] = get_args(ApiScope)
SCOPE_DESCRIPTIONS: dict[ApiScope, str] = {
    "users:read": "Read users (one's own account, or all for a moderator or admin)",
    "users:write": "Create, change, delete, restore, lock and unlock users; import",
    "roles:manage": "Grant and revoke roles",
    "sessions:manage": "List and revoke users' sessions",
    "audit:read": "Read and verify the audit log",
    "maintenance": "Purge dead tokens, sessions and keys; list and retry mail",
    "admin": "Everything the owner's roles allow",
}
