"""Standard Webhooks signatures, and the signing secrets encrypted at rest.

A secret is ``whsec_`` + base64 of random bytes; the signature is
``v1,`` + base64(HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}"))
(https://www.standardwebhooks.com). The secret must be readable to sign, so it
is stored encrypted (AES-GCM) with a key derived from the server key (the JWT
secret, configured or generated once in the database), bound to its
subscription's id: a database dump alone does not give it away when the server
key is configured outside the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "whsec_"
SECRET_BYTES = 32
_FORMAT = "v1:"


class SecretUnreadable(Exception):
    """The stored secret does not decrypt: the server key changed since it was made."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """True when one of the space-separated signatures in ``header`` is ours (receivers' check)."""
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split())


def _key(server_key: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"usermgmt webhook secrets"
    ).derive(server_key)


def encrypt(server_key: bytes, subscription_id: uuid.UUID, secret: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_key(server_key)).encrypt(nonce, secret.encode(), subscription_id.bytes)
    return _FORMAT + base64.b64encode(nonce + sealed).decode("ascii")


def decrypt(server_key: bytes, subscription_id: uuid.UUID, stored: str) -> str:
    if not stored.startswith(_FORMAT):
        raise SecretUnreadable("unknown secret format")
    raw = base64.b64decode(stored[len(_FORMAT) :])
    try:
        plain = AESGCM(_key(server_key)).decrypt(raw[:12], raw[12:], subscription_id.bytes)
    except InvalidTag:
        raise SecretUnreadable("the server key changed since the secret was made") from None
    return plain.decode()
