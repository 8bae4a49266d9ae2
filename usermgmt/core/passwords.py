"""Password hashing (bcrypt) and the password policy.

bcrypt only reads the first 72 bytes of a password; we refuse longer ones with a
validation error naming the limit instead of truncating them silently.
The common-password list is zxcvbn's bundled list of 30,000 frequent passwords.
"""

from __future__ import annotations

import functools
import re

import bcrypt

from usermgmt.core.errors import ValidationError

BCRYPT_MAX_BYTES = 72
MIN_LENGTH = 8
_BCRYPT_RE = re.compile(r"^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$")


@functools.cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def policy_problems(password: str) -> list[str]:
    """Every rule the password breaks, in words a user can act on."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters")
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        problems.append(f"must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8")
    if not any(c.isupper() for c in password):
        problems.append("must contain an uppercase letter")
    if not any(c.isdigit() for c in password):
        problems.append("must contain a digit")
    if password.lower() in _common_passwords():
        problems.append("is too common")
    return problems


def check_policy(password: str, field: str = "password") -> None:
    problems = policy_problems(password)
    if problems:
        raise ValidationError(f"{field}: " + "; ".join(problems), field_errors={field: problems})


def hash_password(password: str, rounds: int) -> str:
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        raise ValidationError.for_field(
            "password", f"must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8"
        )
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-shape check; False for over-long passwords and unusable hashes."""
    data = password.encode("utf-8")
    if password_hash is None or len(data) > BCRYPT_MAX_BYTES:
        return False
    try:
        return bcrypt.checkpw(data, password_hash.encode("ascii"))
    except ValueError:
        return False


def hash_rounds(password_hash: str) -> int | None:
    match = _BCRYPT_RE.match(password_hash)
    return int(match.group(1)) if match else None


def is_bcrypt_hash(value: str) -> bool:
    return _BCRYPT_RE.match(value) is not None


def needs_rehash(password_hash: str, rounds: int) -> bool:
    return hash_rounds(password_hash) != rounds


@functools.cache
def dummy_hash(rounds: int) -> str:
    """A hash to check against for unknown users, so their login takes as long."""
    return bcrypt.hashpw(b"dummy-password-for-timing", bcrypt.gensalt(rounds)).decode()
