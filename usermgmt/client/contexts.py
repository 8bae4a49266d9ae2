"""The contexts file: where each remote server is and who is logged in to it.

``$XDG_CONFIG_HOME/usermgmt/contexts.json`` (platformdirs' user config dir),
mode 0600 in a directory of mode 0700::

    {"current": "prod",
     "contexts": {"prod": {"server": "https://users.example.com",
                           "user": {"id": "…", "email": "…", "username": "…"},
                           "access_token": "…", "refresh_token": "…",
                           "ca_bundle": null, "insecure": false, "allow_http": false}}}

Every change is read-modify-write under an exclusive ``flock`` on a lock file
beside it, and lands by an atomic rename of a fresh 0600 file: a reader sees
the old file or the new one, never half of one. Two processes refreshing the
same session at once therefore take turns, and the second re-reads the file
and finds the pair the first stored (see ``usermgmt.client.session``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from usermgmt.core.errors import NotFound, NotLoggedIn, ValidationError

FILE_NAME = "contexts.json"
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@:")


def config_dir() -> Path:
    from platformdirs import user_config_path

    return user_config_path("usermgmt", appauthor=False)


@dataclass
class Context:
    server: str
    user: dict[str, Any] = field(default_factory=dict)
    access_token: str | None = None
    refresh_token: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False
    allow_http: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Context:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def public(self, name: str, *, current: bool) -> dict[str, Any]:
        """What ``context list/show`` print: never a token, only whether there is one."""
        user = self.user or {}
        return {
            "name": name,
            "current": current,
            "server": self.server,
            "user": user.get("email") or user.get("username"),
            "user_id": user.get("id"),
            "logged_in": bool(self.access_token or self.refresh_token),
            "ca_bundle": self.ca_bundle,
            "insecure": self.insecure,
            "allow_http": self.allow_http,
        }


def check_name(name: str) -> str:
    if not name or len(name) > 100 or not set(name) <= NAME_CHARS:
        raise ValidationError.for_field(
            "context", "a context name is 1-100 of letters, digits and _ . - @ :"
        )
    return name


class ContextStore:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config_dir()
        self.path = self.directory / FILE_NAME
        self.lock_path = self.directory / f"{FILE_NAME}.lock"

    # ---- reading -------------------------------------------------------------

    def read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"current": None, "contexts": {}}
        try:
            data = json.loads(text)
        except ValueError:
            raise ValidationError(
                f"{self.path} is not valid JSON; fix it or remove it and log in again"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("contexts"), dict):
            raise ValidationError(f"{self.path} is not a usermgmt contexts file")
        return data

    def get(self, name: str | None = None) -> tuple[str, Context]:
        """The context ``name``, or the current one."""
        data = self.read()
        name = name or data.get("current")
        if not name:
            raise NotLoggedIn("Not logged in: run `usermgmt login --server URL` first")
        raw = data["contexts"].get(name)
        if raw is None:
            raise NotFound(f"No context {name!r}; `usermgmt context list` shows them")
        return name, Context.from_dict(raw)

    def current_name(self) -> str | None:
        return self.read().get("current")

    # ---- writing -------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """The file's content, read under an exclusive lock; changes to it are saved."""
        self._ensure_dir()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self.read()
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                self._write(data)
        finally:
            os.close(fd)  # closing releases the lock

    def save(self, name: str, context: Context, *, make_current: bool = True) -> None:
        with self.locked() as data:
            data["contexts"][name] = asdict(context)
            if make_current:
                data["current"] = name

    def _ensure_dir(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.directory.stat().st_mode & 0o077:
            os.chmod(self.directory, 0o700)

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with open(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
