"""Lists of ids bound one parameter each, padded to a bucket size.

An expanding IN is rendered and run by SQLAlchemy anew each time; with one
constant statement per bucket size (the ids padded with a repeat of the last),
a list of ids runs precompiled (usermgmt.core.db.precompiled) like any other
constant read.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam

from usermgmt.core.models import User


class IdBuckets:
    def __init__(self, sizes: tuple[int, ...]) -> None:
        self.sizes = tuple(sorted(sizes))

    def fit(self, ids: list[uuid.UUID]) -> bool:
        """Whether ``ids`` (at least one) fit the largest bucket."""
        return bool(ids) and bool(self.sizes) and len(ids) <= self.sizes[-1]

    def params(self, ids: list[uuid.UUID]) -> tuple[int, dict[str, Any]]:
        """The bucket size for ``ids`` (they must :meth:`fit`) and their parameters."""
        size = next(b for b in self.sizes if b >= len(ids))
        padded = [*ids, *[ids[-1]] * (size - len(ids))]
        return size, {f"id{i}": value for i, value in enumerate(padded)}


def id_binds(size: int) -> list[Any]:
    """The ``size`` parameters of a bucket, for ``User.id.in_(...)``."""
    return [bindparam(f"id{i}", type_=User.id.type) for i in range(size)]
