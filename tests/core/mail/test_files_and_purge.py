"""The embedded default (mail as .eml files), template overrides, and purge of old mail."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select, update

from usermgmt.core.config import data_dir
from usermgmt.core.errors import ConfigurationError
from usermgmt.core.mail.render import Renderer, describe_duration
from usermgmt.core.models import MailMessage
from usermgmt.core.services import build_services, outbox

TOKEN_RE = re.compile(r"/reset-password\?token=([A-Za-z0-9_\-]+)")
PASSWORD = "Us3r-Passw0rd-Long"
NEW_PASSWORD = "N3w-Reset-Passw0rd!"


def test_without_smtp_mail_is_an_eml_file_whose_link_works(services, operator, ctx, caplog):
    caplog.set_level(logging.INFO, logger="usermgmt.mail")
    services.users.create(operator, ctx, {"email": "ada@example.com", "password": PASSWORD})
    services.auth.forgot_password(ctx, {"email": "ada@example.com"})

    assert services.mail.deliver_pending().sent == 1

    folder = data_dir() / "mail"
    (path,) = folder.glob("*.eml")
    assert str(path) in caplog.text  # the path is logged
    raw = path.read_text()
    (token,) = set(TOKEN_RE.findall(raw))  # readable straight from the file
    with services.db.read() as s:
        row = s.execute(select(MailMessage)).scalar_one()
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == row.message_id
    assert path.name == row.message_id.strip("<>") + ".eml"
    assert token not in caplog.text

    services.auth.reset_password(ctx, {"token": token, "new_password": NEW_PASSWORD})
    services.auth.login(ctx, {"email": "ada@example.com", "password": NEW_PASSWORD})


def test_mail_dir_setting_is_used(make_services, tmp_path):
    folder = tmp_path / "outbox-files"
    services = make_services(mail_dir=str(folder))
    with services.db.write() as s:
        outbox.enqueue(
            s, services.settings, "password_changed", "a@example.com",
            user_id=None, context={}, now=services.clock.now(), ids=services.ids,
        )  # fmt: skip
    assert services.mail.deliver_pending().sent == 1
    assert len(list(folder.glob("*.eml"))) == 1


def test_purge_removes_delivered_mail_older_than_retention(make_services, operator, ctx, clock):
    services = make_services(mail_retention_days=10, clock=clock)
    now = clock.now()
    with services.db.write() as s:
        for name in ("old_sent", "new_sent", "old_pending", "old_failed"):
            outbox.enqueue(
                s, services.settings, "password_changed", f"{name}@example.com",
                user_id=None, context={}, now=now, ids=services.ids,
            )  # fmt: skip
    ages = {
        "old_sent": ("sent", now - timedelta(days=11)),
        "new_sent": ("sent", now - timedelta(days=9)),
        "old_pending": ("pending", None),
        "old_failed": ("failed", None),
    }
    with services.db.write() as s:
        for name, (status, sent_at) in ages.items():
            s.execute(
                update(MailMessage)
                .where(MailMessage.to_addr == f"{name}@example.com")
                .values(status=status, sent_at=sent_at, created_at=now - timedelta(days=40))
            )

    dry = services.maintenance.purge(operator, ctx, dry_run=True)
    assert dry.counts["mail"] == 1
    report = services.maintenance.purge(operator, ctx)
    assert report.counts["mail"] == 1

    with services.db.read() as s:
        left = sorted(s.execute(select(MailMessage.to_addr)).scalars())
    assert left == ["new_sent@example.com", "old_failed@example.com", "old_pending@example.com"]


def test_template_override_directory(make_services, tmp_path):
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "password_changed.subject").write_text("[$site] password changed\n")
    (overrides / "password_changed.txt").write_text("Custom text for $email, 100$$ sure.\n")
    services = make_services(mail_templates_dir=str(overrides), mail_dir=str(tmp_path / "m"))
    with services.db.write() as s:
        outbox.enqueue(
            s, services.settings, "password_changed", "a@example.com",
            user_id=None, context={}, now=services.clock.now(), ids=services.ids,
        )  # fmt: skip
    services.mail.deliver_pending()
    (path,) = (tmp_path / "m").glob("*.eml")
    msg = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert msg["Subject"] == "[127.0.0.1:8000] password changed"
    assert msg.get_body(("plain",)).get_content() == "Custom text for a@example.com, 100$ sure.\n"
    # The HTML part was not overridden: the bundled one is used.
    assert "was changed on" in msg.get_body(("html",)).get_content()


def test_broken_override_is_an_error_at_start(database_url, tmp_path):
    from usermgmt.core.config import load_settings

    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "invitation.txt").write_text("Welcome $nickname\n")
    with pytest.raises(ConfigurationError) as info:
        build_services(load_settings(database_url=database_url, mail_templates_dir=overrides))
    assert "invitation.txt" in info.value.message and "$nickname" in info.value.message


def test_bad_smtp_url_is_an_error_at_start(database_url):
    from usermgmt.core.config import load_settings

    settings = load_settings(database_url=database_url, smtp_url="smtp://u:hunter22@h?x=1")
    with pytest.raises(ConfigurationError) as info:
        build_services(settings)
    assert "hunter22" not in info.value.message


def test_bundled_templates_are_complete():
    from usermgmt.core.config import load_settings

    Renderer().check(load_settings())


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3600, "1 hour"),
        (86400, "24 hours"),
        (604800, "7 days"),
        (5400, "90 minutes"),
        (60, "1 minute"),
    ],
)
def test_durations(seconds, text):
    assert describe_duration(seconds) == text
