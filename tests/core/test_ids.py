"""usermgmt.core.ids: where the ids of rows and events come from."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from usermgmt.core.ids import RANDOM_IDS, SequentialIds
from usermgmt.core.models import AuditEvent, AuthSession, MailMessage, OneTimeToken, RefreshToken

from .helpers import login, make_user


def test_sequential_ids_repeat_per_seed_and_look_like_uuid4():
    first, again, other = SequentialIds("a"), SequentialIds("a"), SequentialIds("b")
    run = [first.new_uuid() for _ in range(100)]
    assert run == [again.new_uuid() for _ in range(100)]
    assert len(set(run)) == 100
    assert not set(run) & {other.new_uuid() for _ in range(100)}
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in run)


def test_random_ids_are_version_4():
    assert RANDOM_IDS.new_uuid().version == 4
    assert RANDOM_IDS.new_uuid() != RANDOM_IDS.new_uuid()


def test_every_row_and_event_takes_its_id_from_the_injected_source(make_services, operator, ctx):
    services = make_services(ids=SequentialIds("rows"))
    user = make_user(services, operator, ctx, "ada@example.com")
    login(services, ctx, "ada@example.com")
    services.auth.forgot_password(ctx, {"email": "ada@example.com"})
    with services.db.read() as s:
        written = [user.id]
        for model in (AuthSession, RefreshToken, OneTimeToken, MailMessage, AuditEvent):
            written += s.execute(select(model.id)).scalars().all()
    expected = SequentialIds("rows")
    issued = {expected.new_uuid() for _ in range(len(written))}
    assert len(written) == len(set(written)) > 6
    assert set(written) == issued  # every id came from the source, none from elsewhere
