"""Random tokens, their at-rest digests, and access-token JWTs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from usermgmt.core.errors import AuthenticationError
from usermgmt.core.models import utcnow

TOKEN_BYTES = 32  # 256 bits
JWT_ALGORITHM = "HS256"
ACCESS_TYPE = "access"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


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


def encode_access_token(
    key: bytes, user_id: uuid.UUID, session_id: uuid.UUID, ttl: int, now: datetime | None = None
) -> str:
    now = now or utcnow()
    claims = {
        "sub": str(user_id),
        "sid": str(session_id),
        "jti": secrets.token_hex(16),
        "typ": ACCESS_TYPE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
    }
    return jwt.encode(claims, key, algorithm=JWT_ALGORITHM)


# A compact HS256 JWS: three base64url segments, the last a 32-byte MAC (43 chars).
_HS256_TOKEN = re.compile(r"[A-Za-z0-9_-]{2,2048}\.[A-Za-z0-9_-]{2,2048}\.[A-Za-z0-9_-]{43}")
_REQUIRED_CLAIMS = ("exp", "iat", "sub", "sid", "jti", "typ")


def _b64url_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def decode_access_token(key: bytes, token: str) -> AccessClaims:
    """Verify signature (HS256 only), expiry and required claims.

    Tokens are issued by :func:`encode_access_token` (PyJWT); verification is
    done here because it runs on every authenticated request and PyJWT's
    general-purpose decode costs several times more. The MAC is checked over
    the exact signing input, in constant time, before anything in the token
    is parsed; then the header must say HS256 and the claims must be complete,
    of type ``access``, not expired and not issued in the future (what PyJWT
    checks, with no leeway).
    """
    invalid = AuthenticationError("Invalid access token")
    if not isinstance(token, str) or not _HS256_TOKEN.fullmatch(token):
        raise invalid
    signing_input, _, signature = token.rpartition(".")
    mac = hmac.digest(key, signing_input.encode("ascii"), "sha256")
    expected = base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")
    if not hmac.compare_digest(expected, signature):
        raise invalid
    header_segment, _, payload_segment = signing_input.partition(".")
    try:
        header = _b64url_json(header_segment)
        claims = _b64url_json(payload_segment)
    except (ValueError, binascii.Error, RecursionError):  # JSONDecodeError is a ValueError
        raise invalid from None
    if not isinstance(header, dict) or header.get("alg") != JWT_ALGORITHM or "crit" in header:
        raise invalid
    if not isinstance(claims, dict) or any(name not in claims for name in _REQUIRED_CLAIMS):
        raise invalid
    if claims["typ"] != ACCESS_TYPE:
        raise invalid
    exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf")
    if not _is_number(exp) or not _is_number(iat) or (nbf is not None and not _is_number(nbf)):
        raise invalid
    now = time.time()
    if exp <= now:
        raise AuthenticationError("Access token expired")
    if iat > now or (nbf is not None and nbf > now):
        raise invalid
    try:
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            session_id=uuid.UUID(claims["sid"]),
            jti=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(exp, UTC),
        )
    except (ValueError, TypeError, AttributeError, OverflowError, OSError):
        raise invalid from None
