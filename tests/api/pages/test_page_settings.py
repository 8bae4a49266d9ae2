"""Link templates (where the mails' links point) and the operator's page templates."""

from __future__ import annotations

import pytest

from usermgmt.core.config import load_settings
from usermgmt.core.errors import ConfigurationError

from .page_helpers import Html, PageClient, make_user, newest_link, reset_link


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("link_template_reset", "https://app.example/reset", "{token}"),
        ("link_template_verify", "https://app.example/v?a={token}&b={token}", "{token}"),
        ("link_template_invite", "javascript:alert(1)//{token}", "http"),
        ("link_template_invite", "/relative?token={token}", "http"),
    ],
)
def test_a_bad_link_template_stops_the_program_at_start(name, value, problem):
    with pytest.raises(ConfigurationError) as raised:
        load_settings(**{name: value})
    assert f"USERMGMT_{name.upper()}" in str(raised.value)
    assert problem in str(raised.value)


def test_link_templates_point_the_mails_at_an_apps_own_pages(make_services, operator, ctx):
    services = make_services(
        link_template_reset="https://app.example/reset#t={token}",
        link_template_invite="https://app.example/welcome?invite={token}",
        public_url="https://id.example",
    )
    make_user(services, "ada@example.com")
    reset = reset_link(services, "ada@example.com")
    assert reset.startswith("https://app.example/reset#t=")
    assert len(reset.removeprefix("https://app.example/reset#t=")) >= 43

    services.users.create(operator, ctx, {"email": "inv@example.com"})
    invite = newest_link(services, "inv@example.com", "invitation")
    assert invite.startswith("https://app.example/welcome?invite=")

    services.auth.register(ctx, {"email": "new@example.com", "password": "Corr3ct-Horse-Battery"})
    # No template for verification: our own page under the public URL.
    verify = newest_link(services, "new@example.com", "verify_email")
    assert verify.startswith("https://id.example/verify-email?token=")


def test_an_operator_overrides_a_page_and_the_stylesheet(make_pages, tmp_path):
    (tmp_path / "link_invalid.html").write_text(
        '{% extends "_base.html" %}{% set heading = "Lien expiré" %}'
        "{% block content %}<p>Demandez un nouveau lien à {{ site }}.</p>{% endblock %}"
    )
    (tmp_path / "style.css").write_text("body { color: teal; }")
    pages = make_pages(pages_templates_dir=str(tmp_path))
    page = pages.open_link("/reset-password?token=unknown")
    assert page.status_code == 400
    assert "Lien expiré" in Html(page.text).text
    assert pages.api.simulate_get("/pages/style.css").text == "body { color: teal; }"
    # Pages not copied keep the bundled version.
    make_user(pages.services, "ada@example.com")
    other = PageClient(pages.api)
    form = other.open_link(reset_link(pages.services, "ada@example.com"))
    assert "Choose a new password" in Html(form.text).text


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{% extends '_base.html' %}{% block content %}{% endblock", "set_password.html"),
        ("{{ nickname }}", "'nickname' is undefined"),
    ],
    ids=["syntax", "unknown-value"],
)
def test_a_broken_page_template_stops_the_server_at_start(make_pages, tmp_path, content, problem):
    (tmp_path / "set_password.html").write_text(content)
    with pytest.raises(ConfigurationError) as raised:
        make_pages(pages_templates_dir=str(tmp_path))
    assert "USERMGMT_PAGES_TEMPLATES_DIR" in str(raised.value)
    assert problem in str(raised.value)
    assert "set_password.html" in str(raised.value)
