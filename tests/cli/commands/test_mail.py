"""`usermgmt mail deliver | list | retry` on both databases (file transport)."""

import uuid

from sqlalchemy import update

from usermgmt.core.models import MailMessage


def test_deliver_list_and_retry(cli, services, operator, ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("USERMGMT_MAIL_DIR", str(tmp_path / "mail"))
    services.users.create(operator, ctx, {"email": "new@example.com"})  # an invitation
    services.auth.forgot_password(ctx, {"email": "new@example.com"})

    listed = cli("mail", "list", "--status", "pending", "-o", "json")
    assert listed.exit_code == 0
    assert sorted(m["template"] for m in listed.json()) == ["invitation", "password_reset"]
    assert "token" not in listed.stdout and "link" not in listed.stdout

    done = cli("mail", "deliver", "-o", "json")
    assert done.exit_code == 0 and done.json() == {"sent": 2, "retried": 0, "failed": 0}
    emls = list((tmp_path / "mail").glob("*.eml"))
    assert len(emls) == 2
    assert cli("mail", "deliver").stdout.startswith("Sent 0,")

    sent = cli("mail", "list", "--status", "sent", "-q")
    ids = sent.stdout.split()
    assert len(ids) == 2
    again = cli("mail", "retry", ids[0])
    assert again.exit_code == 4 and again.error_line.startswith("error: CONFLICT:")

    with services.db.write() as s:  # make one a dead letter
        dead = MailMessage.id == uuid.UUID(ids[0])
        s.execute(update(MailMessage).where(dead).values(status="failed"))
    retried = cli("mail", "retry", ids[0], "-o", "json")
    assert retried.exit_code == 0 and retried.json()["status"] == "pending"
    assert cli("mail", "retry", "not-a-uuid").exit_code == 3
    assert cli("mail", "list", "--status", "bogus").exit_code == 2
