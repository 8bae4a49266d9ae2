"""Transports without a database: SMTP URL parsing, TLS and login, the file transport."""

from __future__ import annotations

import ssl
import stat
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from usermgmt.core.errors import ConfigurationError
from usermgmt.core.mail.render import Rendered, build_message
from usermgmt.core.mail.transports import (
    DeliveryError,
    FileTransport,
    SmtpConfig,
    SmtpTransport,
    transport_from_settings,
)

from .conftest import SmtpServer
from .helpers import SMTP_PASSWORD, SMTP_USER, check_login, free_port


def sample(message_id="<abc-123@example.com>"):
    rendered = Rendered(subject="Hi", text="plain body\n", html="<p>html body</p>")
    return build_message(
        rendered,
        mail_from="Usermgmt <noreply@example.com>",
        to_addr="ada@example.com",
        message_id=message_id,
        date=datetime(2026, 1, 18, 10, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("mail.example.com", 25, False, False, None, None)),
        ("smtp://h:2525", ("h", 2525, False, False, None, None)),
        ("smtp://h?starttls=true", ("h", 587, False, True, None, None)),
        ("smtp://u:p@h:25?starttls=false", ("h", 25, False, False, "u", "p")),
        ("smtps://h", ("h", 465, True, False, None, None)),
        ("smtps://me%40x.org:p%3Aw%2Fd@h:4650", ("h", 4650, True, False, "me@x.org", "p:w/d")),
    ],
)
def test_smtp_url_forms(url, expected):
    cfg = SmtpConfig.from_url(url)
    assert (
        cfg.host,
        cfg.port,
        cfg.implicit_tls,
        cfg.starttls,
        cfg.username,
        cfg.password,
    ) == expected
    assert cfg.timeout == 30


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://u:hunter22@h", "scheme"),
        ("smtp://u:hunter22@", "no host"),
        ("smtps://u:hunter22@h?starttls=true", "already TLS"),
        ("smtp://u:hunter22@h?starttls=maybe", "starttls"),
        ("smtp://u:hunter22@h?tls=1", "unknown option"),
        ("smtp://u:hunter22@h?timeout=0", "timeout"),
        ("smtp://u:hunter22@h:99999", "not a valid URL"),
        ("smtp://u:hunter22@h/path", "path"),
    ],
)
def test_bad_smtp_urls_are_clear_errors_without_the_password(url, problem):
    with pytest.raises(ConfigurationError) as info:
        SmtpConfig.from_url(url)
    assert problem in info.value.message
    assert "hunter22" not in info.value.message


def test_masked_url_hides_the_password():
    cfg = SmtpConfig.from_url("smtp://bob:hunter22@mail.example.com?starttls=true&timeout=5")
    assert cfg.masked() == "smtp://bob:***@mail.example.com:587?starttls=true"
    assert cfg.timeout == 5


def test_settings_choose_the_transport(tmp_path):
    from usermgmt.core.config import load_settings

    files = transport_from_settings(load_settings(mail_dir=str(tmp_path)))
    assert isinstance(files, FileTransport) and files.directory == tmp_path
    smtp = transport_from_settings(load_settings(smtp_url="smtps://u:pw@h"))
    assert isinstance(smtp, SmtpTransport) and smtp.describe() == "smtps://u:***@h:465"


def test_starttls_with_login(server_tls, client_tls):
    server = SmtpServer(
        tls_context=server_tls, require_starttls=True, authenticator=check_login
    ).start()
    try:
        url = f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{server.port}?starttls=true"
        transport = SmtpTransport.from_url(url, ssl_context=client_tls)
        with transport.session() as conn:
            conn.send(sample("<one@example.com>"))
            conn.send(sample("<two@example.com>"))  # same connection
    finally:
        server.stop()
    assert server.handler.message_ids() == ["<one@example.com>", "<two@example.com>"]


def test_implicit_tls(server_tls, client_tls):
    server = SmtpServer(ssl_context=server_tls).start()
    try:
        transport = SmtpTransport.from_url(
            f"smtps://127.0.0.1:{server.port}", ssl_context=client_tls
        )
        with transport.session() as conn:
            conn.send(sample())
    finally:
        server.stop()
    (got,) = server.received
    assert got.message["Subject"] == "Hi"
    assert got.rcpt_tos == ["ada@example.com"]
    assert got.mail_from == "noreply@example.com"


def test_untrusted_certificate_is_refused(server_tls):
    server = SmtpServer(ssl_context=server_tls).start()
    try:
        transport = SmtpTransport.from_url(
            f"smtps://127.0.0.1:{server.port}", ssl_context=ssl.create_default_context()
        )
        with pytest.raises(DeliveryError) as info, transport.session() as conn:
            conn.send(sample())
    finally:
        server.stop()
    assert info.value.server_down
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.message
    assert server.received == []


def test_server_without_starttls_is_refused_not_sent_in_clear():
    server = SmtpServer().start()  # no TLS offered
    try:
        transport = SmtpTransport.from_url(f"smtp://127.0.0.1:{server.port}?starttls=true")
        with pytest.raises(DeliveryError) as info, transport.session() as conn:
            conn.send(sample())
    finally:
        server.stop()
    assert info.value.server_down and "STARTTLS" in info.value.message
    assert server.received == []


def test_connection_refused_and_timeout_are_server_down():
    transport = SmtpTransport.from_url(f"smtp://127.0.0.1:{free_port()}?timeout=2")
    with pytest.raises(DeliveryError) as info, transport.session() as conn:
        conn.send(sample())
    assert info.value.server_down
    assert "ConnectionRefusedError" in info.value.message


def test_file_transport_writes_one_private_file_per_message_id(tmp_path, caplog):
    caplog.set_level("INFO", logger="usermgmt.mail")
    folder = tmp_path / "mail"
    transport = FileTransport(folder)
    with transport.session() as conn:
        where = conn.send(sample("<m-1@example.com>"))
        again = conn.send(sample("<m-1@example.com>"))  # a retry: same file
        other = conn.send(sample("<../../evil/x@example.com>"))
    assert where == again == str(folder / "m-1@example.com.eml")
    assert other.startswith(str(folder)) and "/evil/" not in other
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["m-1@example.com.eml", "_.._evil_x@example.com.eml"]
    )
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "m-1@example.com.eml").stat().st_mode) == 0o600
    parsed = message_from_bytes(
        (folder / "m-1@example.com.eml").read_bytes(), policy=policy.default
    )
    assert parsed["Message-ID"] == "<m-1@example.com>"
    assert parsed.get_body(("plain",)).get_content() == "plain body\n"
    assert where in caplog.text


def test_file_transport_unwritable_folder_is_server_down(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(DeliveryError) as info, FileTransport(blocker).session() as conn:
        conn.send(sample())
    assert info.value.server_down and "cannot write" in info.value.message


def test_a_server_that_never_answers_times_out():
    import socket

    with socket.socket() as silent:  # accepts connections (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        transport = SmtpTransport.from_url(f"smtp://127.0.0.1:{port}?timeout=0.5")
        with pytest.raises(DeliveryError) as info, transport.session() as conn:
            conn.send(sample())
    assert info.value.server_down and "timed out after 0.5s" in info.value.message


def test_refusal_after_data_keeps_the_session_usable():
    server = SmtpServer().start()
    server.handler.reject_data = "451 4.3.0 Try again later"
    try:
        transport = SmtpTransport.from_url(server.url)
        with transport.session() as conn:
            with pytest.raises(DeliveryError) as info:
                conn.send(sample("<first@example.com>"))
            server.handler.reject_data = None
            conn.send(sample("<second@example.com>"))
    finally:
        server.stop()
    assert not info.value.server_down and "451" in info.value.message
    assert server.handler.message_ids() == ["<second@example.com>"]
