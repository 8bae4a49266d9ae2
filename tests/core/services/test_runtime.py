"""services.runtime, health, scopes and migrations: what the faces need instead of the settings
and the database, on both databases."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from usermgmt.core import errors
from usermgmt.core.config import load_settings
from usermgmt.core.services import build_services
from usermgmt.core.services.runtime import runtime_options

# Nothing listens on port 9 (discard) of the loopback: the connection is refused at once.
DEAD = "postgresql+psycopg://admin:hunter22@127.0.0.1:9/users"


@pytest.fixture
def unreachable():
    services = build_services(
        load_settings(database_url=DEAD), ensure_schema=False, eager=False, check_mail=False
    )
    yield services
    services.close()


# ---- runtime ----------------------------------------------------------------------


def test_options_are_what_a_face_acts_on(make_services, backend):
    services = make_services(
        cors_origins="https://a.example, https://b.example",
        trusted_proxies="10.0.0.0/8",
        max_body_bytes=4096,
        rate_limit_login="3/minute",
        rate_limit_auth="off",
        rate_limit_storage="database",
        log_level="warning",
    )
    options = services.runtime.options
    assert options.backend == backend.replace("postgres", "postgresql")
    assert options.log_level == "WARNING" and options.log_format is None
    api = services.runtime.api_options
    assert api.cors_origins == ("https://a.example", "https://b.example")
    assert api.trusted_proxies == ("10.0.0.0/8",)
    assert api.max_body_bytes == 4096
    rules = api.rate_limits
    assert (rules.login, rules.auth) == ("3/minute", "off")
    assert rules.enabled and rules.in_database and not rules.counted_per_process


def test_the_database_is_named_with_its_password_masked():
    options = runtime_options(load_settings(database_url=DEAD))
    assert options.database == "postgresql+psycopg://admin:***@127.0.0.1:9/users"
    assert options.backend == "postgresql"


def test_describe_gives_every_setting_its_source_and_hides_secrets(
    make_services, monkeypatch, database_url
):
    monkeypatch.setenv("USERMGMT_JWT_SECRET", "s" * 40)
    described = make_services().runtime.describe(command_line={"database_url"})
    assert described.unavailable is None
    assert described.schema.up_to_date and described.head == described.schema.current
    by_name = {s.name: s for s in described.settings}
    assert by_name["USERMGMT_DATABASE_URL"].source == "command line"
    assert by_name["USERMGMT_BCRYPT_ROUNDS"].source == "environment (USERMGMT_BCRYPT_ROUNDS)"
    assert by_name["USERMGMT_JWT_SECRET"].value == "(set, hidden)"
    assert by_name["USERMGMT_MAX_BODY_BYTES"].source == "default"
    assert "s" * 40 not in repr(described)


def test_describe_tells_an_unreachable_database_without_raising(unreachable):
    described = unreachable.runtime.describe()
    assert described.schema is None and described.head
    assert isinstance(described.unavailable, errors.DatabaseUnavailable)
    assert described.database == "postgresql+psycopg://admin:***@127.0.0.1:9/users"
    assert "hunter22" not in repr(described)


def test_the_rate_limit_counters_are_shared_through_the_database(make_services):
    first, second = make_services(), make_services()
    a, b = first.runtime.rate_limit_counters(), second.runtime.rate_limit_counters()
    assert a.incr("login/1.2.3.4", 60) == 1
    assert b.incr("login/1.2.3.4", 60) == 2
    assert a.get("login/1.2.3.4") == 2 and a.check()


def test_the_mail_transport_is_described_without_its_password(make_services, tmp_path: Path):
    files = make_services(mail_dir=str(tmp_path / "outbox"))
    assert files.mail.describe_transport() == f"files in {tmp_path / 'outbox'}"
    smtp = make_services(smtp_url="smtp://mailer:s3cret-pw@127.0.0.1:2525")
    described = smtp.mail.describe_transport()
    assert "127.0.0.1:2525" in described and "s3cret-pw" not in described


# ---- health -----------------------------------------------------------------------


def test_health_pings_the_database(services, unreachable):
    services.health.ping()
    assert services.health.database_ready()
    with pytest.raises(errors.DatabaseUnavailable):
        unreachable.health.ping()
    assert not unreachable.health.database_ready()


# ---- scopes -----------------------------------------------------------------------


def test_a_scope_shares_one_connection_per_thread_until_closed(services):
    db = services.db
    scope = services.scopes.open()
    try:
        with db.connect() as first:
            pass
        with db.connect() as second:
            assert second is first and not first.conn.closed
        elsewhere = []
        worker = threading.Thread(target=lambda: elsewhere.append(_reader(db)))
        worker.start()
        worker.join()
        assert elsewhere[0] is not first
    finally:
        services.scopes.close(scope)
    assert first.conn.closed
    with db.connect() as after:
        assert after is not first


def _reader(db):
    with db.connect() as reader:
        return reader


# ---- migrations -------------------------------------------------------------------


def test_migrations_go_down_and_up_and_refuse_an_unknown_revision(make_services):
    migrations = build_services(
        make_services().settings, ensure_schema=False, eager=False
    ).migrations
    try:
        head = migrations.state()
        assert head.up_to_date
        down = migrations.downgrade("base")
        assert down.current is None and not down.up_to_date
        with pytest.raises(errors.ValidationError) as refused:
            migrations.upgrade("no-such-revision")
        assert refused.value.field_errors["revision"]
        assert migrations.state().current is None  # nothing was done
        assert migrations.upgrade() == head
        assert migrations.upgrade() == head  # again: nothing to do
    finally:
        migrations.db.dispose()


def test_ensure_refuses_a_schema_behind_the_code(make_services):
    services = make_services()
    unchecked = build_services(services.settings, ensure_schema=False, eager=False)
    try:
        unchecked.migrations.ensure()  # up to date: nothing to do
        for behind in ("0009", "base"):  # base leaves Alembic's table: not an empty database
            unchecked.migrations.downgrade(behind)
            with pytest.raises(errors.SchemaOutOfDate, match="usermgmt db upgrade"):
                unchecked.migrations.ensure()
        unchecked.migrations.upgrade()
        unchecked.migrations.ensure()
    finally:
        unchecked.close()


def test_ensure_creates_the_schema_of_an_empty_database(tmp_path):
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    unchecked = build_services(settings, ensure_schema=False, eager=False)
    try:
        assert unchecked.migrations.state().current is None
        unchecked.migrations.ensure()
        assert unchecked.migrations.state().up_to_date
    finally:
        unchecked.close()


def test_services_built_for_info_and_db_ignore_a_bad_mail_setting(database_url):
    settings = load_settings(database_url=database_url, smtp_url="smtp://host:notaport")
    with pytest.raises(errors.ConfigurationError):
        build_services(settings, eager=False).close()
    services = build_services(settings, ensure_schema=False, eager=False, check_mail=False)
    try:
        assert services.runtime.describe().schema.up_to_date
        assert services.migrations.state().up_to_date
    finally:
        services.close()
