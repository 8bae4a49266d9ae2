"""Who is acting and from where. Every service call takes both.

An :class:`Actor` is either a signed-in user (with the roles they hold now) or a
local operator (``cli:alice``, ``tui:alice``), who may do everything. A user acting
through an API key also carries the key's scopes: every permission check asks for
its scope as well as for its role, so the key acts with the intersection of both.
"""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass, field

from usermgmt.core.errors import PermissionDenied


@dataclass(frozen=True)
class RequestContext:
    ip: str | None = None
    request_id: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Actor:
    label: str
    user_id: uuid.UUID | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    is_operator: bool = False
    session_id: uuid.UUID | None = None
    # An API key's scopes (None: not a key, so no scope limits the roles) and its id.
    scopes: frozenset[str] | None = None
    key_id: uuid.UUID | None = None
    # A session the role policy holds back until the user enrols a second factor: the
    # API lets it reach only the enrolment endpoints, /auth/me and logout.
    mfa_pending: bool = False

    @classmethod
    def operator(cls, face: str, os_user: str | None = None) -> Actor:
        """A local operator of the CLI or TUI, labelled ``<face>:<os user>``."""
        if os_user is None:
            try:
                os_user = getpass.getuser()
            except (KeyError, OSError):
                os_user = "unknown"
        return cls(label=f"{face}:{os_user}", is_operator=True)

    @classmethod
    def anonymous(cls) -> Actor:
        return cls(label="anonymous")

    @staticmethod
    def is_label(ref: str) -> bool:
        """Whether a reference to an actor is an audit label (``cli:alice``,
        ``system:lockout``, ``user:ada@example.com``) rather than a user's id,
        email or username, none of which can contain a colon."""
        return ":" in ref

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls(label=what, is_operator=True)

    @property
    def is_admin(self) -> bool:
        return self.is_operator or "admin" in self.roles

    @property
    def is_moderator(self) -> bool:
        return self.is_admin or "moderator" in self.roles

    def is_self(self, user_id: uuid.UUID) -> bool:
        return self.user_id is not None and self.user_id == user_id

    def allows(self, scope: str) -> bool:
        """Whether the actor's key (if any) has ``scope`` (``admin`` has them all)."""
        return self.scopes is None or scope in self.scopes or "admin" in self.scopes

    def require_scope(self, scope: str) -> None:
        if not self.allows(scope):
            raise PermissionDenied(f"This API key lacks the {scope} scope")

    # The scope a check asks for defaults to ``admin``: an operation nobody mapped to
    # a narrower scope is open to no narrowly scoped key.
    def require_admin(self, scope: str = "admin") -> None:
        if not self.is_admin:
            raise PermissionDenied()
        self.require_scope(scope)

    def require_moderator(self, scope: str = "admin") -> None:
        if not self.is_moderator:
            raise PermissionDenied()
        self.require_scope(scope)

    def require_authenticated(self, scope: str | None = None) -> None:
        """A signed-in user or an operator; with ``scope``, a key must have it."""
        if not self.is_operator and self.user_id is None:
            from usermgmt.core.errors import AuthenticationError

            raise AuthenticationError()
        if scope is not None:
            self.require_scope(scope)
