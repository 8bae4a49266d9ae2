"""The migrations produce exactly the models, on both databases, and downgrade cleanly."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from usermgmt.core import migrate
from usermgmt.core.db import Database
from usermgmt.core.migrate import include_object_for
from usermgmt.core.models import Base

# Alembic notes that it cannot compare the expression indexes (0007's, PostgreSQL
# only, and 0014's), and SQLAlchemy that SQLite cannot reflect one; include_object
# leaves them out anyway and a test checks that they exist by name.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:autogenerate skipping metadata-specified expression-based index"
    ),
    pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index"),
]


def _diff(db: Database):
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "include_object": include_object_for(conn.dialect.name)},
        )
        return compare_metadata(ctx, Base.metadata)


def test_autogenerate_finds_no_difference(database_url):
    db = Database(database_url)
    try:
        assert _diff(db) == []
        assert migrate.schema_state(db).up_to_date
    finally:
        db.dispose()


def test_the_expression_indexes_exist(database_url):
    db = Database(database_url)
    try:
        with db.engine.connect() as conn:
            if db.is_sqlite:  # SQLite's inspector skips expression indexes
                names = {
                    row[0]
                    for row in conn.exec_driver_sql(
                        "SELECT name FROM sqlite_master WHERE type = 'index'"
                    )
                }
            else:
                names = {i["name"] for i in inspect(conn).get_indexes("users")}
        assert names >= migrate.EXPRESSION_INDEXES
    finally:
        db.dispose()


def test_downgrade_to_base_and_back(database_url):
    db = Database(database_url)
    try:
        migrate.downgrade(db, "base")
        with db.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        assert migrate.schema_state(db).current is None
        migrate.upgrade(db)
        assert migrate.schema_state(db).up_to_date
        assert _diff(db) == []
    finally:
        db.dispose()


def test_empty_database_is_created_on_first_use(tmp_path, monkeypatch):
    from usermgmt.core.config import load_settings
    from usermgmt.core.services import build_services

    url = f"sqlite:///{tmp_path / 'fresh' / 'new.db'}"
    svc = build_services(load_settings(database_url=url))
    try:
        assert migrate.schema_state(svc.db).up_to_date
    finally:
        svc.close()


def test_schema_behind_is_refused(database_url):
    import pytest

    from usermgmt.core.config import load_settings
    from usermgmt.core.errors import SchemaOutOfDate
    from usermgmt.core.services import build_services

    db = Database(database_url)
    migrate.downgrade(db, "base")
    with db.engine.begin() as conn:  # a non-empty database at an unknown old state
        conn.exec_driver_sql("CREATE TABLE legacy (id INTEGER)")
    db.dispose()
    with pytest.raises(SchemaOutOfDate, match="usermgmt db upgrade"):
        build_services(load_settings(database_url=database_url))


def test_schema_newer_than_the_code_is_named(database_url):
    import pytest
    from sqlalchemy import text

    from usermgmt.core.config import load_settings
    from usermgmt.core.errors import SchemaOutOfDate
    from usermgmt.core.services import build_services

    db = Database(database_url)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    db.dispose()
    with pytest.raises(SchemaOutOfDate, match="newer than this usermgmt"):
        build_services(load_settings(database_url=database_url))
