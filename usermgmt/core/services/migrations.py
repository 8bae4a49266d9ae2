"""The database schema: its revision, and migrating it up or down (Alembic).

The ``usermgmt db`` commands work through this service over services built
without the schema check (``build_services(ensure_schema=False)``), since
their job is a schema that is missing or behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from usermgmt.core import migrate
from usermgmt.core.errors import ValidationError
from usermgmt.core.migrate import SchemaState
from usermgmt.core.services.base import ServiceBase

__all__ = ["MigrationService", "SchemaState"]


class MigrationService(ServiceBase):
    def state(self) -> SchemaState:
        """The database's revision (None: no schema) and the one this code needs."""
        return migrate.schema_state(self.db)

    def upgrade(self, revision: str = "head") -> SchemaState:
        """Migrate up to ``revision``; the state afterwards. Safe to run again."""
        with _revision_errors():
            migrate.upgrade(self.db, revision)
        return self.state()

    def downgrade(self, revision: str) -> SchemaState:
        """Migrate down to ``revision`` (``base``: no tables). Data dropped is lost."""
        with _revision_errors():
            migrate.downgrade(self.db, revision)
        return self.state()

    def ensure(self) -> None:
        """Create an empty database's schema (first use), or refuse one that is behind
        (SchemaOutOfDate names the fix): what ``build_services`` does by default."""
        migrate.ensure_schema(self.db)


@contextmanager
def _revision_errors() -> Iterator[None]:
    """A revision Alembic cannot find (or reach) is bad input, not a crash."""
    from alembic.util.exc import CommandError

    try:
        yield
    except CommandError as exc:
        raise ValidationError.for_field("revision", str(exc)) from None
