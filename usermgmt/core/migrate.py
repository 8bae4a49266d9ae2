"""Schema management through Alembic: upgrade, downgrade, current revision and checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from usermgmt.core.db import Database, _translated
from usermgmt.core.errors import SchemaOutOfDate

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def include_object_for(dialect: str):
    """Alembic's include_object: dialect-conditional indexes exist only on their dialect."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        if type_ == "table" and name == "alembic_version":
            return False
        if type_ == "index" and not reflected and getattr(obj, "_ddl_if", None) is not None:
            return obj._ddl_if.dialect in (None, dialect)
        return True

    return include


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def schema_state(db: Database) -> SchemaState:
    with _translated(), db.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaState(current, head_revision())


def _run(db: Database, fn, *args) -> None:
    cfg = alembic_config(db)
    with _translated(), db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        fn(cfg, *args)


def upgrade(db: Database, revision: str = "head") -> None:
    _run(db, command.upgrade, revision)


def downgrade(db: Database, revision: str) -> None:
    _run(db, command.downgrade, revision)


def is_empty(db: Database) -> bool:
    with _translated(), db.engine.connect() as conn:
        return not inspect(conn).get_table_names()


def ensure_schema(db: Database, *, auto_create: bool = True) -> None:
    """Create an empty database's schema (first use), or refuse a schema that is behind.

    Only an empty database is migrated automatically; an existing one that is
    behind the code raises SchemaOutOfDate, whose message names the fix.
    """
    state = schema_state(db)
    if state.up_to_date:
        return
    if state.current is None and auto_create and is_empty(db):
        upgrade(db)
        return
    raise SchemaOutOfDate(
        f"Database schema is at {state.current or 'nothing'}, the code needs {state.head}; "
        "run `usermgmt db upgrade`"
    )
