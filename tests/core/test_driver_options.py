"""psycopg's own URL parameters get their types, and prepared statements can be turned off."""

from __future__ import annotations

import pytest

from usermgmt.core.config import load_settings
from usermgmt.core.db import Database
from usermgmt.core.errors import ConfigurationError
from usermgmt.core.services.runtime import runtime_options

PG = "postgresql+psycopg://app:secret@db.example:5432/usermgmt"


@pytest.mark.parametrize(
    ("query", "prepared"),
    [("", True), ("?prepare_threshold=0", True), ("?prepare_threshold=12", True),
     ("?prepare_threshold=none", False), ("?prepare_threshold=None", False),
     ("?sslmode=disable&prepare_threshold=off", False)],
)  # fmt: skip
def test_the_url_decides_when_the_setting_is_left_on(query, prepared):
    options = runtime_options(load_settings(database_url=PG + query))
    assert options.prepared_statements is prepared


def test_the_setting_turns_prepared_statements_off():
    settings = load_settings(database_url=PG, database_prepared_statements=False)
    assert runtime_options(settings).prepared_statements is False


def test_sqlite_has_no_prepared_statement_setting(tmp_path):
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/x.db")
    assert runtime_options(settings).prepared_statements is None


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("?prepare_threshold=abc", "prepare_threshold in the URL must be a whole number"),
        ("?prepare_threshold=-1", "prepare_threshold in the URL must be a whole number"),
        ("?prepare_threshold=1&prepare_threshold=2", "more than once"),
        ("?autocommit=true", "autocommit in the URL is not supported"),
    ],
)
def test_bad_driver_parameters_are_configuration_errors(query, said):
    with pytest.raises(ConfigurationError) as caught:
        load_settings(database_url=PG + query)
    assert said in str(caught.value)
    assert "USERMGMT_DATABASE_URL" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_the_setting_and_the_url_may_not_contradict_each_other():
    with pytest.raises(ConfigurationError) as caught:
        load_settings(database_url=PG + "?prepare_threshold=3", database_prepared_statements=False)
    assert "USERMGMT_DATABASE_PREPARED_STATEMENTS" in str(caught.value)
    assert "prepare_threshold=3" in str(caught.value)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "setting", "threshold"),
    [("", True, 5), ("?prepare_threshold=0", True, 0), ("?prepare_threshold=none", True, None),
     ("", False, None)],
)  # fmt: skip
def test_connections_get_the_threshold_as_psycopg_wants_it(pg_database, query, setting, threshold):
    db = Database(pg_database + query, prepared_statements=setting)
    try:
        with db.connect() as reader:
            assert reader.conn.connection.driver_connection.prepare_threshold == threshold
            with db.read() as session:  # and the server never sees the parameter
                assert session.connection().exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        db.dispose()
