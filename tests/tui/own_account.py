"""The two-step sign-in screens without a server, showing the same thing every run.

They belong to the remote console: the enrolment shows the secret a server made, the
login names the server and account of a stored context. ``OwnAccount`` stands in for
a remote backend's own-account parts over the embedded core: ``mfa.setup`` answers
``SETUP`` (a fixed secret, so the QR code and the snapshots never change) and
``login_again()`` a real ``ContextLogin`` for a context stored in a temporary file,
which reaches no server until a password is sent. Everything else is the core's.
Their behaviour against a live server is tested in tests/client/test_console_mfa.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyotp

from usermgmt.client.contexts import Context, ContextStore
from usermgmt.client.login import ContextLogin
from usermgmt.core.mfa_schemas import TotpSetup

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
URI = pyotp.TOTP(SECRET).provisioning_uri(
    name="ada@example.com", issuer_name="usermgmt (users.example.com)"
)
SETUP = TotpSetup(secret=SECRET, otpauth_uri=URI, qr_svg="")
CONTEXT = "prod"
RECOVERY_CODES = [f"{n:04d}-abcd-efgh-jkmn" for n in range(10)]


class FixedEnrolment:
    """The enrolment's first step as a server answers it; nothing else is asked of it."""

    def setup(self, actor: Any, ctx: Any) -> TotpSetup:
        return SETUP


class OwnAccount:
    def __init__(self, services: Any, contexts: Path) -> None:
        self._services = services
        self.mfa = FixedEnrolment()
        self._store = ContextStore(contexts)
        self._store.save(
            CONTEXT,
            Context(server="https://users.example.com", user={"email": "ada@example.com"}),
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._services, name)

    def login_again(self) -> ContextLogin:
        return ContextLogin(CONTEXT, self._store)
