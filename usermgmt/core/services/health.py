"""Whether the database answers: for readiness probes and a console that reconnects."""

from __future__ import annotations

from usermgmt.core.errors import ServiceUnavailable
from usermgmt.core.services.base import ServiceBase


class HealthService(ServiceBase):
    def ping(self) -> None:
        """Return when the database answers a trivial query; else raise DatabaseUnavailable
        (a ServiceUnavailable), within the database's connect timeout."""
        self.db.ping()

    def database_ready(self) -> bool:
        """Whether the database answers now (``ping`` without the error)."""
        try:
            self.ping()
        except ServiceUnavailable:
            return False
        return True
