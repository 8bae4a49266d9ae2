"""Schema management through Alembic: upgrade, downgrade, current revision and checks.

Every command checks the schema before it runs, so that check must be cheap:
the current revision is read from ``alembic_version`` with one query and the
head from the migration files' ``revision``/``down_revision`` lines, without
importing Alembic (which costs more than the rest of a short command). Alembic
itself is imported only to migrate, or when the files name more than one head.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from usermgmt.core.db import Database
from usermgmt.core.db.errors import translated
from usermgmt.core.errors import SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "alembic_version"
_ASSIGNMENT = r"^{name}(?:[ \t]*:[^=\n]*)?[ \t]*=[ \t]*(.+)$"
_REVISION_RE = re.compile(_ASSIGNMENT.format(name="revision"), re.MULTILINE)
_DOWN_REVISION_RE = re.compile(_ASSIGNMENT.format(name="down_revision"), re.MULTILINE)
_QUOTED_RE = re.compile(r"[\"']([^\"']+)[\"']")


# The partitions of user_search on PostgreSQL (migration 0008): storage of one
# table the model describes whole, not tables of their own.
PG_PARTITIONS = frozenset({"user_search_low", "user_search_high"})
# SQLite's full-text index of the copy (migration 0009): the FTS5 table and its
# shadow tables, and the integer key the index points at, are storage of the
# search machinery that the model (user_id is the copy's key) does not describe.
SQLITE_SEARCH_INDEX_PREFIX = "user_search_fts"
SQLITE_COPY_EXTRAS = frozenset({("column", "rid"), ("unique_constraint", "uq_user_search_user_id")})
# Indexes on an expression (migration 0014): each database reflects its own spelling
# of the expression (PostgreSQL adds casts, SQLite cannot reflect it), so Alembic
# cannot compare them; test_migrate checks that they exist by name.
EXPRESSION_INDEXES = frozenset({"ix_users_live_name_id"})


def include_object_for(dialect: str):
    """Alembic's include_object: dialect-conditional indexes exist only on their dialect,
    partitions are their parent table's business, and SQLite's full-text index of the
    search copy (with the copy's integer key) is the search machinery's."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        if type_ == "table" and name == "alembic_version":
            return False
        if type_ == "table" and reflected and name in PG_PARTITIONS:
            return False
        if type_ == "table" and reflected and name.startswith(SQLITE_SEARCH_INDEX_PREFIX):
            return False
        if (
            reflected
            and (type_, name) in SQLITE_COPY_EXTRAS
            and getattr(getattr(obj, "table", None), "name", None) == "user_search"
        ):
            return False
        if type_ == "index" and name in EXPRESSION_INDEXES:
            return False
        if type_ == "index" and not reflected and getattr(obj, "_ddl_if", None) is not None:
            return obj._ddl_if.dialect in (None, dialect)
        return True

    return include


def alembic_config(db: Database) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


@functools.cache
def _scan_revisions() -> tuple[frozenset[str], frozenset[str]] | None:
    """(revisions, parents) read from the scripts without importing Alembic, or None."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision = _REVISION_RE.search(source)
        down = _DOWN_REVISION_RE.search(source)
        if revision is None or down is None:
            return None
        revisions.update(_QUOTED_RE.findall(revision.group(1)))
        parents.update(_QUOTED_RE.findall(down.group(1)))
    return frozenset(revisions), frozenset(parents)


@functools.cache
def head_revision() -> str:
    """The newest revision of the migration scripts."""
    scanned = _scan_revisions()
    if scanned is None:
        return _alembic_head()
    heads = scanned[0] - scanned[1]
    return next(iter(heads)) if len(heads) == 1 else _alembic_head()


def is_known_revision(revision: str) -> bool:
    scanned = _scan_revisions()
    return scanned is None or revision in scanned[0]


def _alembic_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

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
    with translated(), db.engine.connect() as conn:
        current = None
        if inspect(conn).has_table(VERSION_TABLE):
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            current = ",".join(sorted(versions)) or None
    return SchemaState(current, head_revision())


def _run(db: Database, fn_name: str, *args) -> None:
    from alembic import command

    cfg = alembic_config(db)
    with translated(), db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, fn_name)(cfg, *args)


def upgrade(db: Database, revision: str = "head") -> None:
    _run(db, "upgrade", revision)


def downgrade(db: Database, revision: str) -> None:
    _run(db, "downgrade", revision)


def is_empty(db: Database) -> bool:
    with translated(), db.engine.connect() as conn:
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
    if state.current is not None and not all(map(is_known_revision, state.current.split(","))):
        raise SchemaOutOfDate(
            f"Database schema is at {state.current}, newer than this usermgmt knows "
            f"(its newest is {state.head}); use the usermgmt version that migrated it"
        )
    raise SchemaOutOfDate(
        f"Database schema is at {state.current or 'nothing'}, the code needs {state.head}; "
        "run `usermgmt db upgrade`"
    )
