"""The account pages without a browser: the token's way out of the URL, headers, CSRF,
rate limits shared with the API, the policy messages, invitations and new links."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from usermgmt.core import passwords
from usermgmt.core.models import MailMessage

from .page_helpers import (
    API,
    NEW_PASSWORD,
    PAGE_CSP,
    STRONG_PASSWORD,
    Html,
    make_user,
    newest_link,
    reset_link,
)


def assert_page_headers(result) -> None:
    assert result.headers["Content-Security-Policy"] == PAGE_CSP
    assert result.headers["Cache-Control"] == "no-store"
    assert result.headers["Referrer-Policy"] == "no-referrer"
    assert result.headers["X-Content-Type-Options"] == "nosniff"


def test_the_link_moves_its_token_into_a_scoped_cookie_and_out_of_the_url(pages):
    make_user(pages.services, "ada@example.com")
    link = reset_link(pages.services, "ada@example.com")
    assert link.startswith("http://127.0.0.1:8000/reset-password?token=")
    token = link.split("token=", 1)[1]

    first = pages.get(link.removeprefix("http://127.0.0.1:8000"))
    assert first.status_code == 303
    assert first.headers["Location"] == "/reset-password"
    assert_page_headers(first)
    cookie = first.cookies["usermgmt_link"]
    assert cookie.value == token
    assert cookie.http_only and cookie.path == "/reset-password"
    assert cookie.same_site == "Lax" and not cookie.secure
    assert 0 < cookie.max_age <= 900

    page = pages.get("/reset-password")
    assert page.status_code == 200
    assert token not in page.text
    html = Html(page.text)
    assert html.inputs["username"]["value"] == "ada@example.com"
    assert html.inputs["username"]["autocomplete"] == "username"
    assert html.inputs["new_password"]["autocomplete"] == "new-password"
    assert html.inputs["new_password"]["aria-describedby"] == "new_password-hint"
    assert "autofocus" in html.inputs["new_password"]
    assert_page_headers(page)


def test_cookies_are_secure_behind_a_trusted_https_proxy(make_pages):
    pages = make_pages(trusted_proxies="127.0.0.1")
    result = pages.get("/verify-email?token=abc", headers={"X-Forwarded-Proto": "https"})
    assert result.cookies["usermgmt_link"].secure
    page = pages.get("/verify-email", headers={"X-Forwarded-Proto": "https"})
    assert page.cookies["usermgmt_csrf"].secure
    assert page.cookies["usermgmt_csrf"].same_site == "Strict"


def test_reset_through_the_page_then_log_in_and_the_link_is_spent(pages):
    make_user(pages.services, "ada@example.com")
    link = reset_link(pages.services, "ada@example.com")
    page = pages.open_link(link)
    posted = pages.post(
        "/reset-password",
        {"intent": "set_password", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
        csrf_from=page,
        follow=False,
    )
    assert posted.status_code == 303  # post, redirect, get: a reload sends nothing
    assert posted.headers["Location"] == "/reset-password"
    assert_page_headers(posted)
    assert "usermgmt_link" not in pages.cookies
    for _ in range(2):  # shown, and shown again on a reload
        done = pages.get("/reset-password")
        assert done.status_code == 200, done.text
        assert "Password changed" in Html(done.text).text
        assert_page_headers(done)
    assert pages.api.login("ada@example.com", NEW_PASSWORD).status_code == 200
    assert pages.api.login("ada@example.com", STRONG_PASSWORD).status_code == 401

    again = pages.open_link(link)
    assert again.status_code == 400
    assert "This link no longer works" in Html(again.text).text


def test_a_policy_violation_shows_the_apis_messages_accessibly_and_spends_nothing(pages):
    make_user(pages.services, "ada@example.com")
    link = reset_link(pages.services, "ada@example.com")
    page = pages.open_link(link)
    weak = "short1"
    refused = pages.post(
        "/reset-password",
        {"intent": "set_password", "new_password": weak, "confirm_password": weak},
        csrf_from=page,
    )
    assert refused.status_code == 400
    assert_page_headers(refused)
    html = Html(refused.text)
    expected = [f"The password {m}." for m in passwords.policy_problems(weak)]
    assert html.roles["alert"][1:] == expected  # after the summary's heading
    field = html.inputs["new_password"]
    assert field["aria-invalid"] == "true"
    assert field["aria-describedby"] == "new_password-hint new_password-error"
    assert "autofocus" in field and "value" not in field
    assert html.inputs["username"]["value"] == "ada@example.com"
    assert weak not in refused.text  # the password is never sent back
    # The API says the same, and the link still works.
    api = pages.api.simulate_post(
        f"{API}/auth/reset-password",
        json={"token": link.split("token=")[1], "new_password": weak},
    )
    assert api.json["error"]["field_errors"]["new_password"] == passwords.policy_problems(weak)
    assert pages.get("/reset-password").status_code == 200


def test_two_different_passwords_are_refused_on_the_second_field(pages):
    make_user(pages.services, "ada@example.com")
    page = pages.open_link(reset_link(pages.services, "ada@example.com"))
    refused = pages.post(
        "/reset-password",
        {"intent": "set_password", "new_password": NEW_PASSWORD, "confirm_password": "Other-1x"},
        csrf_from=page,
    )
    assert refused.status_code == 400
    html = Html(refused.text)
    assert html.inputs["confirm_password"]["aria-invalid"] == "true"
    assert "autofocus" in html.inputs["confirm_password"]
    assert "The two passwords are not the same." in html.roles["alert"]


@pytest.mark.parametrize("csrf", [None, "0" * 64, "forged"], ids=["missing", "wrong", "malformed"])
def test_a_post_without_the_pages_csrf_token_is_refused_and_changes_nothing(pages, csrf):
    make_user(pages.services, "ada@example.com")
    pages.open_link(reset_link(pages.services, "ada@example.com"))
    fields = {"intent": "set_password", "new_password": NEW_PASSWORD}
    fields["confirm_password"] = NEW_PASSWORD
    if csrf is not None:
        fields["csrf"] = csrf
    refused = pages.post("/reset-password", fields)
    assert refused.status_code == 403
    assert_page_headers(refused)
    assert "This form has expired" in Html(refused.text).text
    assert pages.api.login("ada@example.com", STRONG_PASSWORD).status_code == 200
    assert pages.get("/reset-password").status_code == 200  # the link is not spent


def test_a_csrf_field_from_another_browser_is_refused(make_pages):
    attacker, victim = make_pages(), None
    make_user(attacker.services, "ada@example.com")
    page = attacker.get("/reset-password")  # the attacker's own nonce and field
    from .page_helpers import PageClient

    victim = PageClient(attacker.api)
    victim.open_link(reset_link(victim.services, "ada@example.com"))
    fields = {"intent": "set_password", "new_password": NEW_PASSWORD}
    fields["confirm_password"] = NEW_PASSWORD
    assert victim.post("/reset-password", fields, csrf_from=page).status_code == 403
    assert victim.api.login("ada@example.com", STRONG_PASSWORD).status_code == 200


def test_a_form_that_is_not_urlencoded_is_refused(pages):
    result = pages.api.simulate_post(
        "/reset-password", json={"new_password": NEW_PASSWORD}, headers={}
    )
    assert result.status_code == 400
    assert "text/html" in result.headers["Content-Type"]
    assert_page_headers(result)


def test_pages_share_the_apis_rate_limit_keys(make_pages):
    pages = make_pages(rate_limit_auth="2/minute")
    make_user(pages.services, "ada@example.com")
    page = pages.open_link(reset_link(pages.services, "ada@example.com"))
    for _ in range(2):  # the API endpoint's allowance, used up through the API
        pages.api.simulate_post(
            f"{API}/auth/reset-password", json={"token": "x" * 43, "new_password": "x"}
        )
    limited = pages.post(
        "/reset-password",
        {"intent": "set_password", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
        csrf_from=page,
    )
    assert limited.status_code == 429
    assert_page_headers(limited)
    assert int(limited.headers["Retry-After"]) >= 1
    assert "Too many attempts" in Html(limited.text).text
    assert pages.api.login("ada@example.com", STRONG_PASSWORD).status_code == 200

    # The "new link" form counts against forgot-password's key, not reset-password's.
    sent = pages.post("/reset-password", {"intent": "new_link", "email": "a@b.co"}, csrf_from=page)
    assert sent.status_code == 200
    pages.post("/reset-password", {"intent": "new_link", "email": "a@b.co"}, csrf_from=page)
    api = pages.api.simulate_post(f"{API}/auth/forgot-password", json={"email": "a@b.co"})
    assert api.status_code == 429


def test_the_verify_page_confirms_only_on_the_button_so_a_scanner_spends_nothing(pages):
    result = pages.api.register("new@example.com")
    assert result.status_code == 201
    link = newest_link(pages.services, "new@example.com", "verify_email")
    assert link.startswith("http://127.0.0.1:8000/verify-email?token=")
    page = pages.open_link(link)
    assert page.status_code == 200
    assert "new@example.com" in Html(page.text).text
    assert pages.get("/verify-email").status_code == 200  # looking twice spends nothing
    done = pages.post("/verify-email", {"intent": "verify"}, csrf_from=page)
    assert done.status_code == 200
    assert "Email address confirmed" in Html(done.text).text
    token = pages.api.token_for("new@example.com")
    me = pages.api.simulate_get(f"{API}/auth/me", headers=pages.api.bearer(token))
    assert me.json["email_verified"] is True


def test_an_invitation_sets_the_first_password_on_its_own_page(pages):
    admin = make_user(pages.services, "root@example.com", roles=["admin"])
    assert admin
    from usermgmt.core.context import Actor, RequestContext

    pages.services.users.create(
        Actor.operator("cli", "tester"), RequestContext(), {"email": "inv@example.com"}
    )
    link = newest_link(pages.services, "inv@example.com", "invitation")
    assert link.startswith("http://127.0.0.1:8000/accept-invite?token=")
    page = pages.open_link(link)
    assert "Choose your password" in Html(page.text).text
    done = pages.post(
        "/accept-invite",
        {"intent": "set_password", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
        csrf_from=page,
    )
    assert done.status_code == 200, done.text
    assert "Password set" in Html(done.text).text
    login = pages.api.login("inv@example.com", NEW_PASSWORD)
    assert login.status_code == 200
    assert login.json["user"]["email_verified"] is True


@pytest.mark.parametrize("page_path", ["/reset-password", "/accept-invite"])
def test_an_unknown_link_offers_a_new_one_with_the_apis_neutral_answer(pages, page_path):
    make_user(pages.services, "ada@example.com")
    page = pages.open_link(f"{page_path}?token=not-a-token")
    assert page.status_code == 400
    assert_page_headers(page)
    assert "This link no longer works" in Html(page.text).text
    answers = []
    for email in ("ada@example.com", "nobody@example.com"):
        sent = pages.post(page_path, {"intent": "new_link", "email": email}, csrf_from=page)
        assert sent.status_code == 200
        answers.append(Html(sent.text).roles["status"])
    assert answers[0] == answers[1]
    forgot = pages.api.simulate_post(f"{API}/auth/forgot-password", json={"email": "x@y.co"})
    assert forgot.json["message"] in answers[0]
    with pages.services.db.read() as s:
        sent_to = s.execute(
            select(MailMessage.to_addr).where(MailMessage.template == "password_reset")
        ).scalars()
        assert list(sent_to) == ["ada@example.com"]


def test_a_bad_email_in_the_new_link_form_is_kept_and_announced(pages):
    page = pages.open_link("/reset-password?token=gone")
    refused = pages.post("/reset-password", {"intent": "new_link", "email": ""}, csrf_from=page)
    assert refused.status_code == 400
    html = Html(refused.text)
    assert html.inputs["email"]["aria-invalid"] == "true"
    assert html.roles["alert"]
    kept = pages.post("/reset-password", {"intent": "new_link", "email": "x" * 400}, csrf_from=page)
    assert Html(kept.text).inputs["email"]["value"] == "x" * 400


def test_an_unverified_user_gets_a_new_verification_link_without_signing_in(pages):
    pages.api.register("new@example.com")
    first = newest_link(pages.services, "new@example.com", "verify_email")
    page = pages.open_link("/verify-email?token=expired")
    assert "Get a new verification link" in Html(page.text).text
    sent = pages.post(
        "/verify-email", {"intent": "new_link", "email": "new@example.com"}, csrf_from=page
    )
    assert sent.status_code == 200
    second = newest_link(pages.services, "new@example.com", "verify_email")
    assert second != first
    # The first link was replaced by the second.
    assert pages.open_link(first).status_code == 400
    assert pages.open_link(second).status_code == 200


def test_the_stylesheet_is_ours(pages):
    css = pages.api.simulate_get("/pages/style.css")
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert "url(" not in css.text and "@import" not in css.text
