"""The account pages in a real headless Chromium with JavaScript off, against a live
`usermgmt serve` on loopback (SQLite and PostgreSQL): each flow starts from the link
in the delivered mail file and ends with a login through the API."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import update

from usermgmt.core.models import OneTimeToken

from .page_helpers import NEW_PASSWORD, PAGE_CSP, STRONG_PASSWORD, make_user

pytestmark = pytest.mark.slow

LINK_RE = re.compile(r"http://127\.0\.0\.1:\d+/[a-z-]+\?token=[A-Za-z0-9_-]+")


def api(site, path: str, body: dict, token: str | None = None) -> tuple[int, dict | None]:
    request = urllib.request.Request(
        site.url + "/api/v1" + path, data=json.dumps(body).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def login(site, email: str, password: str) -> tuple[int, dict | None]:
    return api(site, "/auth/login", {"email": email, "password": password})


class Mailbox:
    """The server's .eml files: wait for the next one to an address, return its link."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen = set(folder.glob("*.eml")) if folder.exists() else set()

    def next_link(self, to: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in sorted(self.folder.glob("*.eml")) if self.folder.exists() else []:
                if path in self.seen:
                    continue
                message = message_from_bytes(path.read_bytes(), policy=policy.default)
                if message["To"] != to:
                    continue
                self.seen.add(path)
                return LINK_RE.search(message.get_body(("plain",)).get_content()).group(0)
            time.sleep(0.05)
        raise AssertionError(f"no mail to {to} within {timeout} s")


def assert_page_headers(response) -> None:
    headers = response.all_headers()
    assert headers["content-security-policy"] == PAGE_CSP
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"


def assert_only_loopback(site, tab) -> None:
    origin = urlsplit(site.url)
    assert tab.requests
    for url in tab.requests:
        parts = urlsplit(url)
        assert parts.scheme == "data" or (parts.hostname, parts.port) == (
            origin.hostname,
            origin.port,
        ), url


def unique(name: str, site) -> str:
    return f"{name}-{site.server.port}-{time.monotonic_ns()}@example.com"


def test_reset_password_from_the_mailed_link_then_log_in(site, tab):
    email = unique("ada", site)
    make_user(site.services, email)
    mailbox = Mailbox(site.mail_dir)
    assert api(site, "/auth/forgot-password", {"email": email})[0] == 202
    link = mailbox.next_link(email)
    assert link.startswith(f"{site.url}/reset-password?token=")
    page = tab.page

    response = page.goto(link)
    assert page.url == f"{site.url}/reset-password"  # the token left the address bar
    assert "token" not in page.url
    assert response.status == 200
    assert_page_headers(response)
    assert page.get_by_role("heading", level=1).text_content() == "Choose a new password"
    assert page.get_by_label("Email address").input_value() == email

    # Focus starts on the new password and follows the form's order.
    assert page.locator("#new_password:focus").count() == 1
    page.keyboard.press("Tab")
    assert page.locator("#confirm_password:focus").count() == 1
    page.keyboard.press("Tab")
    assert page.locator("button[type=submit]:focus").count() == 1

    # A policy violation: announced, the field marked, the password not kept.
    page.get_by_label("New password", exact=True).fill("short1")
    page.get_by_label("New password again").fill("short1")
    page.get_by_role("button", name="Set new password").click()
    alert = page.get_by_role("alert")
    assert "must be at least 8 characters" in alert.text_content()
    assert "must contain an uppercase letter" in alert.text_content()
    field = page.locator("#new_password")
    assert field.get_attribute("aria-invalid") == "true"
    assert "new_password-error" in field.get_attribute("aria-describedby")
    assert page.locator("#new_password:focus").count() == 1
    assert field.input_value() == ""
    assert page.get_by_label("Email address").input_value() == email
    assert page.title().startswith("Error: ")

    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    with page.expect_response(f"{site.url}/reset-password") as posted:
        page.get_by_role("button", name="Set new password").click()
    assert posted.value.status == 303  # post, redirect, get
    assert_page_headers(posted.value)
    assert page.get_by_role("heading", level=1).text_content() == "Password changed"
    assert page.reload().status == 200  # shows the result again, sends nothing
    assert page.get_by_role("heading", level=1).text_content() == "Password changed"

    assert login(site, email, NEW_PASSWORD)[0] == 200
    assert login(site, email, STRONG_PASSWORD)[0] == 401

    # The link is spent: opening it again says so and offers a new one.
    again = page.goto(link)
    assert again.status == 400
    assert page.get_by_role("heading", level=1).text_content() == "This link no longer works"
    assert page.get_by_role("button", name="Send a new link").count() == 1
    assert_only_loopback(site, tab)


def test_verify_email_from_the_mailed_link(site, tab):
    email = unique("new", site)
    mailbox = Mailbox(site.mail_dir)
    status, body = api(site, "/auth/register", {"email": email, "password": STRONG_PASSWORD})
    assert status == 201
    assert body["user"]["email_verified"] is False
    link = mailbox.next_link(email)
    assert link.startswith(f"{site.url}/verify-email?token=")
    page = tab.page

    response = page.goto(link)
    assert page.url == f"{site.url}/verify-email"
    assert_page_headers(response)
    assert email in page.locator("main").text_content()
    page.get_by_role("button", name="Confirm email address").click()
    assert page.get_by_role("heading", level=1).text_content() == "Email address confirmed"

    status, body = login(site, email, STRONG_PASSWORD)
    assert status == 200
    assert body["user"]["email_verified"] is True
    assert_only_loopback(site, tab)


def test_an_expired_link_offers_a_new_one_that_works(site, tab):
    email = unique("late", site)
    make_user(site.services, email)
    mailbox = Mailbox(site.mail_dir)
    assert api(site, "/auth/forgot-password", {"email": email})[0] == 202
    link = mailbox.next_link(email)
    with site.services.db.write() as s:  # the hour passes
        s.execute(
            update(OneTimeToken)
            .where(OneTimeToken.email == email)
            .values(expires_at=site.services.clock.now() - timedelta(seconds=1))
        )
    page = tab.page

    response = page.goto(link)
    assert response.status == 400
    assert "token" not in page.url
    assert_page_headers(response)
    assert page.get_by_role("heading", level=1).text_content() == "This link no longer works"
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Send a new link").click()
    assert page.get_by_role("heading", level=1).text_content() == "Check your email"
    assert "If an account with that email exists" in page.get_by_role("status").text_content()

    page.goto(mailbox.next_link(email))
    assert page.get_by_role("heading", level=1).text_content() == "Choose a new password"
    assert_only_loopback(site, tab)


def test_an_invitation_link_sets_the_first_password(site, tab):
    email = unique("invited", site)
    mailbox = Mailbox(site.mail_dir)
    make_user(site.services, email, password=None)
    link = mailbox.next_link(email)
    assert link.startswith(f"{site.url}/accept-invite?token=")
    page = tab.page
    page.goto(link)
    assert page.get_by_role("heading", level=1).text_content() == "Choose your password"
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    assert page.get_by_role("heading", level=1).text_content() == "Password set"
    assert login(site, email, NEW_PASSWORD)[0] == 200
    assert_only_loopback(site, tab)


def test_a_link_clicked_in_webmail_on_another_site_still_opens_the_form(site, tab):
    """The cross-site click a webmail makes: the token cookie must survive the redirect."""
    email = unique("webmail", site)
    make_user(site.services, email)
    mailbox = Mailbox(site.mail_dir)
    assert api(site, "/auth/forgot-password", {"email": email})[0] == 202
    link = mailbox.next_link(email)
    page = tab.page
    page.goto("data:text/html," + quote(f'<a href="{link}">Reset your password</a>'))
    page.get_by_role("link", name="Reset your password").click()
    page.wait_for_url(f"{site.url}/reset-password")
    assert page.get_by_role("heading", level=1).text_content() == "Choose a new password"
    assert page.get_by_label("Email address").input_value() == email
    # The form's CSRF cookie was set on that same cross-site chain; the post is ours.
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set new password").click()
    assert page.get_by_role("heading", level=1).text_content() == "Password changed"
    assert login(site, email, NEW_PASSWORD)[0] == 200
