"""Random tokens, their at-rest digests, and access-token JWTs."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from usermgmt.core.errors import AuthenticationError

TOKEN_BYTES = 32  # 256 bits
JWT_ALGORITHM = "HS256"
ACCESS_TYPE = "access"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_signing_key() -> str:
    """A generated JWT signing key (384 bits), when none is configured."""
    return secrets.token_urlsafe(48)


def digest(token: str) -> str:
    """SHA-256 hex of a high-entropy token: what is stored instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def derive_successor(key: bytes, token: str) -> str:
    """The successor of a refresh token, derived from it with a server key.

    Deterministic so that a rotated-out token presented again inside the grace
    window gets the *same* successor, although only hashes are stored.
    Only the holder of ``token`` (and the server) can compute it.
    """
    mac = hmac.new(key, b"refresh-successor:" + token.encode("utf-8"), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    jti: str
    expires_at: datetime
    issued_at: datetime
    not_before: datetime | None = None


def encode_access_token(
    key: bytes, user_id: uuid.UUID, session_id: uuid.UUID, ttl: int, now: datetime
) -> str:
    import jwt  # PyJWT costs ~10 ms to import; only sign-in and the API need it

    claims = {
        "sub": str(user_id),
        "sid": str(session_id),
        "jti": secrets.token_hex(16),
        "typ": ACCESS_TYPE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
    }
    return jwt.encode(claims, key, algorithm=JWT_ALGORITHM)


def decode_access_token(key: bytes, token: str, now: datetime) -> AccessClaims:
    """Verify signature (HS256 only), required claims, and the times against ``now``.

    A client sends the same access token with every request for its lifetime,
    and verifying it is a pure function of (key, token): PyJWT's decode was a
    sixth of an authenticated GET's CPU. So the claims of tokens that verified
    are remembered (a bounded LRU; failures are not), and only their expiry is
    checked again. Nothing about the session or user is remembered: the
    caller's database check still runs on every request. The times are checked
    here, against the caller's clock, not by PyJWT (which would read the system's).
    """
    claims = _verified(key, token)
    if claims.expires_at <= now:
        raise AuthenticationError("Access token expired")
    if claims.issued_at > now or (claims.not_before is not None and claims.not_before > now):
        raise AuthenticationError("Invalid access token")  # issued in the future / not yet valid
    return claims


@functools.lru_cache(maxsize=4096)
def _verified(key: bytes, token: str) -> AccessClaims:
    import jwt

    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            options={
                "require": ["exp", "iat", "sub", "sid", "jti", "typ"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        if claims.get("typ") != ACCESS_TYPE:
            raise AuthenticationError("Invalid access token")
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            session_id=uuid.UUID(claims["sid"]),
            jti=str(claims["jti"]),
            expires_at=_instant(claims["exp"]),
            issued_at=_instant(claims["iat"]),
            not_before=_instant(claims["nbf"]) if "nbf" in claims else None,
        )
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError):
        raise AuthenticationError("Invalid access token") from None


def _instant(value: object) -> datetime:
    """A NumericDate claim (seconds since the epoch) as a UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("a time claim must be a number")
    return datetime.fromtimestamp(value, UTC)
