"""Request scopes: the single-statement reads of one request share one pooled connection.

A server opens a scope when a request arrives and closes it when the response
is done, whatever happened: the token check and, say, the user read then take
one connection from the pool instead of two. Nothing is cached in a scope;
each statement still sees the database as it is. Scopes are per thread (or
task) and do not nest.
"""

from __future__ import annotations

from typing import Any

from usermgmt.core.services.base import ServiceBase


class ScopeService(ServiceBase):
    def open(self) -> Any:
        """Start this thread's scope; pass what it returns to :meth:`close`."""
        return self.db.open_scope()

    def close(self, scope: Any) -> None:
        """Return the scope's connection to the pool (if it took one) and end the scope."""
        self.db.close_scope(scope)
