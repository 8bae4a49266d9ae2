"""Access-token verification (usermgmt.core.secrets.decode_access_token), no database.

Tokens are made and verified with PyJWT; these pin down what our options make
it accept and refuse.
"""

import base64
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from usermgmt.core import secrets
from usermgmt.core.errors import AuthenticationError

KEY = b"k" * 64
USER = uuid.uuid4()
SESSION = uuid.uuid4()
# The verifier's present: the caller's clock, not the machine's (tokens are checked against it).
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def claims(**changes):
    now = int(NOW.timestamp())
    base = {
        "sub": str(USER),
        "sid": str(SESSION),
        "jti": "j" * 32,
        "typ": "access",
        "iat": now,
        "exp": now + 900,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload, key=KEY, algorithm="HS256", headers=None):
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(token, key=KEY, now=NOW):
    return secrets.decode_access_token(key, token, now)


def refused(token, now=NOW):
    with pytest.raises(AuthenticationError):
        decode(token, now=now)


def test_issued_token_round_trips():
    token = secrets.encode_access_token(KEY, USER, SESSION, 900, NOW)
    got = decode(token)
    assert (got.user_id, got.session_id) == (USER, SESSION)
    assert len(got.jti) == 32
    assert got.expires_at.tzinfo is not None
    assert got.expires_at == NOW + timedelta(seconds=900)
    assert got.issued_at == NOW


def test_extra_header_fields_and_claims_are_accepted():
    token = sign(claims(extra="x"), headers={"kid": "one"})
    assert decode(token).user_id == USER


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
        "é.é.é",
        "x" * 5000,
    ],
)
def test_malformed_tokens_are_refused(token):
    refused(token)


def test_wrong_key_and_other_algorithms_are_refused():
    refused(sign(claims(), key=b"x" * 64))
    refused(sign(claims(), algorithm="HS512"))
    refused(jwt.encode(claims(), key=None, algorithm="none"))
    # An HS256 MAC under our key but a header naming another algorithm.
    header = b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    mac = b64(hmac.digest(KEY, f"{header}.{body}".encode(), "sha256"))
    refused(f"{header}.{body}.{mac}")


def test_a_changed_payload_or_signature_is_refused():
    token = sign(claims())
    header, body, mac = token.split(".")
    other = b64(json.dumps(claims(sub=str(uuid.uuid4()))).encode())
    refused(f"{header}.{other}.{mac}")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    refused(f"{header}.{body}.{flipped}")


def test_a_signed_payload_that_is_not_an_object_is_refused():
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(b"[1, 2]")
    mac = b64(hmac.digest(KEY, f"{header}.{body}".encode(), "sha256"))
    refused(f"{header}.{body}.{mac}")


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "sid", "jti", "typ"])
def test_every_claim_is_required(missing):
    refused(sign(claims(**{missing: None})))


def test_type_expiry_and_times_are_checked():
    now = int(NOW.timestamp())
    with pytest.raises(AuthenticationError, match="expired"):
        decode(sign(claims(exp=now - 1)))
    refused(sign(claims(typ="refresh")))
    refused(sign(claims(iat=now + 60)))  # issued in the future
    refused(sign(claims(nbf=now + 60)))  # not valid yet
    refused(sign(claims(exp="soon")))
    refused(sign(claims(exp=True)))
    refused(sign(claims(sub="not-a-uuid")))
    assert decode(sign(claims(nbf=now))).user_id == USER


def test_a_remembered_token_still_expires_and_is_bound_to_its_key():
    token = sign(claims())
    assert decode(token).user_id == USER  # verified, remembered
    assert decode(token).user_id == USER  # from memory
    refused_with_other_key = b"z" * 64
    with pytest.raises(AuthenticationError):
        decode(token, key=refused_with_other_key)
    with pytest.raises(AuthenticationError, match="expired"):
        decode(token, now=NOW + timedelta(seconds=901))


def test_a_remembered_token_is_still_refused_before_it_was_issued_or_valid():
    token = sign(claims(nbf=int(NOW.timestamp()) + 30))
    assert decode(token, now=NOW + timedelta(seconds=30)).user_id == USER  # remembered
    refused(token, now=NOW + timedelta(seconds=29))  # not valid yet
    refused(token, now=NOW - timedelta(seconds=1))  # issued in the future


def test_a_refused_token_is_not_remembered():
    token = sign(claims(), key=b"x" * 64)
    before = secrets._verified.cache_info().currsize
    refused(token)
    refused(token)
    assert secrets._verified.cache_info().currsize == before
