"""What the account pages behind the links in mails need from the core.

The pages (``usermgmt.api.pages``) verify an email, set a password from a reset
link and accept an invitation through :class:`AuthService`; this service adds
what a page needs besides: whether a link still works *before* it is used (to
show the form, or at once the "link expired" page), a new verification link
for someone who is not signed in, the key their CSRF tokens are signed with,
and the operator's template folder.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from usermgmt.core import secrets
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.models import OneTimeToken, User
from usermgmt.core.schemas import ForgotPasswordIn, normalise_identifier, parse
from usermgmt.core.services import accounts
from usermgmt.core.services.base import ServiceBase
from usermgmt.core.services.outbox import LINK_PAGES

# Which one-time token purposes each page accepts: an invitation link may also be
# answered with a reset link (what "forgot password" sends an invitee who lost theirs).
PAGE_PURPOSES = {
    "verify": ("verify",),
    "reset": ("reset", "invite"),
    "invite": ("invite", "reset"),
}
NEW_VERIFICATION_MESSAGE = (
    "If an account with that email exists and its address is not verified yet, "
    "a new verification link has been sent."
)


@dataclass(frozen=True)
class LinkState:
    """A link that still works, and the account it is for."""

    email: str


class AccountPageService(ServiceBase):
    @property
    def templates_dir(self) -> Path | None:
        """The operator's page templates (USERMGMT_PAGES_TEMPLATES_DIR), or None."""
        return self.settings.pages_templates_dir

    @staticmethod
    def page_paths() -> dict[str, str]:
        """Path of each page under the server's root: ``{"verify": "/verify-email", …}``."""
        return dict(LINK_PAGES)

    def link_state(self, page: str, raw: str) -> LinkState | None:
        """The account a link of ``page`` works for, or None (unknown, used, voided,
        expired, or the account's email changed since): a read, the token stays unused."""
        if not raw or len(raw) > 512:
            return None
        with self.db.read() as s:
            row = s.execute(
                select(OneTimeToken.email, User.email, User.deleted_at)
                .join(User, User.id == OneTimeToken.user_id)
                .where(
                    OneTimeToken.token_hash == secrets.digest(raw),
                    OneTimeToken.purpose.in_(PAGE_PURPOSES[page]),
                    OneTimeToken.used_at.is_(None),
                    OneTimeToken.voided_at.is_(None),
                    OneTimeToken.expires_at > self.clock.now(),
                )
            ).first()
        if row is None or row[0] != row[1] or row[2] is not None:
            return None
        return LinkState(email=row[1])

    def send_verification_to(self, ctx: RequestContext, data: dict[str, Any]) -> None:
        """A new verification link for whoever is not signed in: always succeeds, and
        mails only an active, unverified account with that email (like forgot-password)."""
        spec = parse(ForgotPasswordIn, data)
        email = normalise_identifier(spec.email)
        with self.db.write() as s:
            user = s.execute(select(User).where(User.email == email)).unique().scalar_one_or_none()
            if (
                user is None
                or user.deleted_at is not None
                or not user.is_active
                or user.email_verified_at is not None
            ):
                return
            accounts.queue_verification(s, self.settings, user, now=self.clock.now(), ids=self.ids)
            self.record_event(s, Actor.anonymous(), ctx, "user.verification_sent", user.id)

    # ---- CSRF --------------------------------------------------------------------

    @staticmethod
    def new_csrf_nonce() -> str:
        return secrets.new_token()

    def csrf_token(self, nonce: str) -> str:
        """The form field that goes with the nonce cookie: an HMAC no other site can
        compute, so a cookie planted by a sibling domain is not enough to post."""
        mac = hmac.new(self.keys.jwt_key(), b"account-page-csrf:" + nonce.encode(), hashlib.sha256)
        return mac.hexdigest()

    def csrf_ok(self, nonce: str | None, given: str | None) -> bool:
        if not nonce or not given or len(nonce) > 128 or len(given) > 128:
            return False
        return hmac.compare_digest(self.csrf_token(nonce), given)
