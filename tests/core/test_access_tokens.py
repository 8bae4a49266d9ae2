"""Access-token verification (usermgmt.core.secrets.decode_access_token), no database.

Tokens are made and verified with PyJWT; these pin down what our options make
it accept and refuse.
"""

import base64
import hmac
import json
import time
import uuid

import jwt
import pytest

from usermgmt.core import secrets
from usermgmt.core.errors import AuthenticationError

KEY = b"k" * 64
USER = uuid.uuid4()
SESSION = uuid.uuid4()


def claims(**changes):
    now = int(time.time())
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


def refused(token):
    with pytest.raises(AuthenticationError):
        secrets.decode_access_token(KEY, token)


def test_issued_token_round_trips():
    token = secrets.encode_access_token(KEY, USER, SESSION, 900)
    got = secrets.decode_access_token(KEY, token)
    assert (got.user_id, got.session_id) == (USER, SESSION)
    assert len(got.jti) == 32
    assert got.expires_at.tzinfo is not None
    assert 890 <= got.expires_at.timestamp() - time.time() <= 900


def test_extra_header_fields_and_claims_are_accepted():
    token = sign(claims(extra="x"), headers={"kid": "one"})
    assert secrets.decode_access_token(KEY, token).user_id == USER


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
    now = int(time.time())
    with pytest.raises(AuthenticationError, match="expired"):
        secrets.decode_access_token(KEY, sign(claims(exp=now - 1)))
    refused(sign(claims(typ="refresh")))
    refused(sign(claims(iat=now + 60)))  # issued in the future
    refused(sign(claims(nbf=now + 60)))  # not valid yet
    refused(sign(claims(exp="soon")))
    refused(sign(claims(exp=True)))
    refused(sign(claims(sub="not-a-uuid")))
    assert secrets.decode_access_token(KEY, sign(claims(nbf=now))).user_id == USER


def test_a_remembered_token_still_expires_and_is_bound_to_its_key(monkeypatch):
    token = sign(claims())
    assert secrets.decode_access_token(KEY, token).user_id == USER  # verified, remembered
    assert secrets.decode_access_token(KEY, token).user_id == USER  # from memory
    refused_with_other_key = b"z" * 64
    with pytest.raises(AuthenticationError):
        secrets.decode_access_token(refused_with_other_key, token)
    later = time.time() + 901
    monkeypatch.setattr(secrets.time, "time", lambda: later)
    with pytest.raises(AuthenticationError, match="expired"):
        secrets.decode_access_token(KEY, token)


def test_a_refused_token_is_not_remembered():
    token = sign(claims(), key=b"x" * 64)
    before = secrets._verified.cache_info().currsize
    refused(token)
    refused(token)
    assert secrets._verified.cache_info().currsize == before
