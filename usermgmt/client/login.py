"""Signing in to a server, step by step, for every face that asks a person: `usermgmt login`
prompts on a terminal, the remote console shows a login screen; both go through here.

:class:`LoginAttempt` sends the password, answers the server's second-factor challenge
with a code when one is asked for, and :func:`save_login` stores the tokens in the
contexts file (ending the session the context held before, if its server still knows it).
Passwords, codes and tokens travel only in request bodies; none is part of a message.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from usermgmt.client.contexts import Context, ContextStore
from usermgmt.client.errors import error_from
from usermgmt.client.session import API, Connection
from usermgmt.core.errors import DomainError, InvalidMfaCode, NotLoggedIn

Identifier = Literal["email", "username"]


@dataclass(frozen=True)
class SecondFactorAsked:
    """The password was right; a code must follow (no tokens yet)."""

    mfa_token: str = field(repr=False)
    methods: list[str]
    expires_in: int


@dataclass(frozen=True)
class SignedIn:
    user: dict[str, Any]
    tokens: dict[str, Any] = field(repr=False)
    # The server's role policy holds the session back until a second factor is enrolled.
    mfa_enrolment_required: bool = False


def code_field(code: str) -> str:
    """Six digits are an authenticator app's code, anything else a recovery code."""
    digits = "".join(code.split())
    return "code" if len(digits) == 6 and digits.isdigit() else "recovery_code"


def verify_for(insecure: bool, ca_bundle: str | None) -> bool | str:
    return False if insecure else (ca_bundle or True)


class LoginAttempt:
    """One sign-in to ``server``: :meth:`password`, then :meth:`second_factor` if asked."""

    def __init__(self, server: str, *, ca_bundle: str | None = None, insecure: bool = False):
        self.conn = Connection(server, None, verify=verify_for(insecure, ca_bundle))

    @property
    def server(self) -> str:
        return self.conn.server

    def password(
        self, identifier: str, password: str, *, by: Identifier = "email"
    ) -> SignedIn | SecondFactorAsked:
        body = self._post("/auth/login", {by: identifier, "password": password})
        if isinstance(body, dict) and body.get("mfa_required"):
            return SecondFactorAsked(
                mfa_token=body["mfa_token"],
                methods=list(body.get("methods") or []),
                expires_in=int(body.get("expires_in") or 0),
            )
        return _signed_in(body)

    def second_factor(self, challenge: SecondFactorAsked, code: str) -> SignedIn:
        """Complete the login with an app code or a recovery code (see :func:`code_field`)."""
        code = code.strip()
        body = self._post(
            "/auth/mfa/verify", {"mfa_token": challenge.mfa_token, code_field(code): code}
        )
        return _signed_in(body)

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        response = self.conn.send_raw("POST", f"{API}{path}", json=payload)
        body = response.json() if response.content else None
        if response.status_code != 200:
            raise error_from(response.status_code, body, self.server)
        return body

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> LoginAttempt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _signed_in(body: dict[str, Any]) -> SignedIn:
    return SignedIn(
        user=body["user"],
        tokens=body["tokens"],
        mfa_enrolment_required=bool(body.get("mfa_enrolment_required")),
    )


def save_login(
    store: ContextStore,
    name: str,
    signed_in: SignedIn,
    *,
    server: str,
    ca_bundle: str | None,
    insecure: bool,
    allow_http: bool,
) -> Context:
    """Store the new session as context ``name`` (made current), ending the one it held."""
    user, tokens = signed_in.user, signed_in.tokens
    context = Context(
        server=server,
        user={k: user.get(k) for k in ("id", "email", "username")},
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        ca_bundle=ca_bundle,
        insecure=insecure,
        allow_http=allow_http,
    )
    _end_previous_session(store, name)
    store.save(name, context)
    return context


def _end_previous_session(store: ContextStore, name: str) -> None:
    """Logging in again to a context ends the session it held, if its server answers."""
    if name not in store.read()["contexts"]:
        return
    _, previous = store.get(name)
    if previous.access_token or previous.refresh_token:
        with contextlib.suppress(DomainError):
            revoke_session(store, name)


def revoke_session(store: ContextStore, name: str) -> bool:
    """End the context's session on its server; False if the server no longer knew it.

    A server that cannot be reached raises (exit 5): the tokens are then kept,
    since the session is still live there.
    """
    from usermgmt.client.factory import RemoteTarget, connect

    _, context = store.get(name)
    backend = connect(RemoteTarget(context.server, name))
    try:
        refresh = backend.conn.credentials.context.refresh_token
        backend.conn.json(
            "POST",
            f"{API}/auth/logout",
            json={"refresh_token": refresh} if refresh else {},
        )
        return True
    except NotLoggedIn:
        return False
    finally:
        backend.close()


class ContextLogin:
    """Signing in again to the stored context ``name`` as the account it names, with its
    server and TLS settings (the remote console's login screen)."""

    def __init__(self, name: str, store: ContextStore | None = None) -> None:
        self.store = store or ContextStore()
        self.name, self.context = self.store.get(name)
        user = self.context.user or {}
        self.by: Identifier = "email" if user.get("email") else "username"
        self.identifier: str = user.get(self.by) or ""
        self._challenge: SecondFactorAsked | None = None
        self._deadline = 0.0
        self.clock = time.monotonic  # seconds, for the challenge's lifetime

    def _attempt(self) -> LoginAttempt:
        return LoginAttempt(
            self.context.server, ca_bundle=self.context.ca_bundle, insecure=self.context.insecure
        )

    def password(self, password: str) -> SignedIn | None:
        """Saved when signed in; None when a code must follow (:meth:`second_factor`)."""
        with self._attempt() as attempt:
            answer = attempt.password(self.identifier, password, by=self.by)
        if isinstance(answer, SecondFactorAsked):
            self._challenge = answer
            self._deadline = self.clock() + answer.expires_in
            return None
        return self._save(answer)

    @property
    def challenge_expired(self) -> bool:
        """The server's challenge outlived its time: the password must be typed again."""
        return self._challenge is not None and self.clock() >= self._deadline

    def second_factor(self, code: str) -> SignedIn:
        if self._challenge is None or self.challenge_expired:  # not a guess for the lockout
            raise InvalidMfaCode("The sign-in took longer than the server allows")
        with self._attempt() as attempt:
            return self._save(attempt.second_factor(self._challenge, code))

    def _save(self, answer: SignedIn) -> SignedIn:
        save_login(
            self.store,
            self.name,
            answer,
            server=self.context.server,
            ca_bundle=self.context.ca_bundle,
            insecure=self.context.insecure,
            allow_http=self.context.allow_http,
        )
        return answer
