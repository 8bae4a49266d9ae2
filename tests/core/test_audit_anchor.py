"""The audit chain's outside anchors: creation events and a recorded head."""

import pytest
from sqlalchemy import delete, select, update

from usermgmt.core import errors
from usermgmt.core.audit import GENESIS_HASH, ChainHead, parse_head
from usermgmt.core.models import AuditEvent, AuditHead, User

from .helpers import make_user


def rewind(services, to_seq: int) -> None:
    """What someone with write access to the database does to hide events: delete the
    newest ones and point the head at the last event kept (a consistent, shorter chain)."""
    with services.db.write() as s:
        if services.db.is_postgres:  # only a superuser can switch the append-only trigger off
            s.connection().exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        s.execute(delete(AuditEvent).where(AuditEvent.seq > to_seq))
        kept = s.execute(select(AuditEvent.hash).where(AuditEvent.seq == to_seq)).scalar()
        s.execute(update(AuditHead).values(seq=to_seq, hash=kept or GENESIS_HASH))
        if services.db.is_postgres:
            s.connection().exec_driver_sql("ALTER TABLE audit_events ENABLE TRIGGER USER")


def test_head_is_the_last_event(services, operator, ctx):
    assert services.audit.head() == ChainHead(0, GENESIS_HASH)
    user = make_user(services, operator, ctx, "ada@example.com")
    services.users.lock(operator, ctx, str(user.id))
    head = services.audit.head()
    last = services.audit.query(operator, {"limit": 1}).data[0]
    assert (head.seq, head.hash) == (2, last.hash) and str(head) == f"2:{last.hash}"
    report = services.audit.verify(operator, str(head))
    assert report.ok and report.head == head


def test_a_bad_expected_head_is_a_validation_error(services, operator):
    for bad in ("", "12", "x:" + "a" * 64, "3:" + "a" * 63, "3:" + "g" * 64):
        with pytest.raises(errors.ValidationError):
            services.audit.verify(operator, bad)
    assert parse_head(" 3:" + "AB" * 32 + "\n") == ChainHead(3, "ab" * 32)


def test_a_truncated_chain_is_caught_by_the_recorded_head(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com")
    services.users.lock(operator, ctx, str(user.id))
    services.users.unlock(operator, ctx, str(user.id))
    recorded = services.audit.head()
    rewind(services, 1)
    assert services.audit.verify(operator).ok  # consistent from the inside
    report = services.audit.verify(operator, recorded)
    assert not report.ok and report.bad_seq == 3 and "truncated or rewound" in report.reason
    assert report.head == ChainHead(1, services.audit.head().hash)


def test_a_rewound_and_regrown_chain_is_caught(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com")
    services.users.lock(operator, ctx, str(user.id))
    recorded = services.audit.head()
    rewind(services, 1)
    services.users.lock(operator, ctx, str(user.id), minutes=5)  # a new seq 2, another hash
    report = services.audit.verify(operator, recorded)
    assert not report.ok and report.bad_seq == 2 and "rewound" in report.reason
    # A chain that grew past the recorded head, untouched, passes.
    services.users.unlock(operator, ctx, str(user.id))
    assert services.audit.verify(operator, f"2:{services.audit.query(operator).data[1].hash}").ok


def test_emptying_events_and_head_is_caught_by_the_users(services, operator, ctx):
    ada = make_user(services, operator, ctx, "ada@example.com")
    services.auth.register(ctx, {"email": "bob@example.com", "password": "Corr3ct-Horse-Battery"})
    services.users.delete(operator, ctx, str(ada.id))  # deleted users count too
    rewind(services, 0)
    report = services.audit.verify(operator)
    assert not report.ok and report.bad_seq is None
    assert report.users_without_creation_count == 2
    bob = services.user_reads.find(operator, "bob@example.com")
    assert set(report.users_without_creation) == {ada.id, bob.id}
    assert "2 user(s) have no creation event" in report.describe()


def test_a_deleted_creation_event_is_named(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    bob = make_user(services, operator, ctx, "bob@example.com")
    rewind(services, 1)  # back to before bob was created: bob's creation event is gone
    report = services.audit.verify(operator)
    assert not report.ok and report.users_without_creation == (bob.id,)


def test_every_creation_path_writes_a_creation_event(services, operator, ctx):
    services.users.create(operator, ctx, {"email": "created@example.com"})
    services.users.ensure(operator, ctx, {"email": "ensured@example.com"})
    services.auth.register(ctx, {"email": "reg@example.com", "password": "Corr3ct-Horse-Battery"})
    report = services.transfer.import_users(operator, ctx, [(2, {"email": "imp@example.com"})])
    assert report.committed and report.created == 1
    with services.db.read() as s:
        assert len(s.execute(select(User.id)).all()) == 4
    assert services.audit.verify(operator).ok


def test_the_head_row_gone_is_reported(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    with services.db.write() as s:
        s.execute(delete(AuditHead))
    report = services.audit.verify(operator)
    assert not report.ok and report.head is None and "head row is missing" in report.reason
    with pytest.raises(errors.AuditChainBroken):
        services.audit.head()
