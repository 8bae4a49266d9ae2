"""The core's one source of row and event ids: an :class:`IdSource`.

``build_services(ids=...)`` hands one source to every service, so users,
sessions, refresh tokens, audit events and mail messages get their ids from it;
tests pass :class:`SequentialIds` for ids that are the same on every run.

Secrets are not ids: tokens, token ids inside a JWT and the generated signing
key always come from :mod:`secrets` (usermgmt.core.secrets), whatever the id
source, so no test setting can make a production secret predictable.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from typing import Protocol


class IdSource(Protocol):
    def new_uuid(self) -> uuid.UUID:
        """A fresh id, unique in this database."""
        ...


class RandomIds:
    """Random (version 4) UUIDs: what production uses."""

    def new_uuid(self) -> uuid.UUID:
        return uuid.uuid4()


RANDOM_IDS = RandomIds()


class SequentialIds:
    """Version-4-shaped UUIDs derived from a counter: the same sequence on every run.

    For tests and fixtures only (they are predictable). Different ``seed`` values
    give sequences that do not overlap.
    """

    def __init__(self, seed: str = "usermgmt") -> None:
        self._seed = seed
        self._counter = itertools.count()  # next() is atomic: safe across threads

    def new_uuid(self) -> uuid.UUID:
        digest = hashlib.sha256(f"{self._seed}:{next(self._counter)}".encode()).digest()
        return uuid.UUID(bytes=digest[:16], version=4)
