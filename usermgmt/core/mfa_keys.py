"""The keys that encrypt TOTP secrets at rest, kept outside the database.

``USERMGMT_MFA_KEY`` holds one or more Fernet keys, comma-separated: the first
encrypts, every one decrypts (MultiFernet), so a key is rotated by putting a new
one first and keeping the old ones until ``usermgmt`` re-encrypted what they
hold (each secret is re-encrypted with the first key whenever it is used).
Without it, the key is the file ``mfa.key`` in the data directory, created on
first use with mode 0600. A dump of the database alone therefore reveals no
secret; losing the key loses every enrolment (docs/mfa.md says how to back it up).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from usermgmt.core.config import Settings, data_dir
from usermgmt.core.errors import ConfigurationError
from usermgmt.core.private_files import create_private_file, private_dir

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

KEY_FILE_NAME = "mfa.key"


def key_file() -> Path:
    return data_dir().expanduser() / KEY_FILE_NAME


class SecretBox:
    """Encrypts and decrypts TOTP secrets with the configured keys (loaded on first use)."""

    def __init__(self, settings: Settings) -> None:
        self._configured = settings.mfa_key
        self._fernet: MultiFernet | None = None
        self._lock = threading.Lock()

    def encrypt(self, secret: str) -> str:
        return self._keys().encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._keys().decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(
                "USERMGMT_MFA_KEY: no configured key decrypts the stored TOTP secrets "
                "(restore the key they were encrypted with)"
            ) from None

    def rotate(self, token: str) -> str:
        """The token re-encrypted with the first key (unchanged if it already is)."""
        return self._keys().rotate(token.encode()).decode()

    def _keys(self) -> MultiFernet:
        # cryptography is imported on first use: a login without a second factor never pays.
        from cryptography.fernet import Fernet, MultiFernet

        if self._fernet is None:
            with self._lock:
                if self._fernet is None:
                    self._fernet = MultiFernet([Fernet(k) for k in self._load()])
        return self._fernet

    def _load(self) -> list[bytes]:
        if self._configured is not None:
            keys = [k.strip() for k in self._configured.get_secret_value().split(",") if k.strip()]
            if not keys:
                raise ConfigurationError("USERMGMT_MFA_KEY: no key given")
            for key in keys:
                _check_key(key)
            return [k.encode() for k in keys]
        return [_file_key(key_file())]


def _check_key(key: str) -> None:
    from cryptography.fernet import Fernet

    try:
        Fernet(key.encode())
    except ValueError:
        raise ConfigurationError(
            "USERMGMT_MFA_KEY: each key must be 32 url-safe base64-encoded bytes "
            "(make one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`)"
        ) from None


def _file_key(path: Path) -> bytes:
    """The key in ``path``; a new key is written there first (mode 0600) if it is missing.

    The key is written to a private temporary file and linked into place, so a
    process racing this one reads either no file or a whole key, never half of one.
    """
    from cryptography.fernet import Fernet

    private_dir(path.parent)
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        create_private_file(temporary)
        try:
            temporary.write_bytes(Fernet.generate_key() + b"\n")
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process stored its key first: use theirs
        finally:
            temporary.unlink(missing_ok=True)
    key = path.read_bytes().strip()
    _check_key(key.decode(errors="replace"))
    return key
