"""Helpers for the account page tests: a form-posting test client and an HTML reader."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from usermgmt.core.context import Actor, RequestContext

from ..api_helpers import API, STRONG_PASSWORD, Api, mail_token

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
NEW_PASSWORD = "Fresh-Horse-Battery9"


class Html(HTMLParser):
    """The parts of a page the tests look at: inputs by id, elements with a role, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.roles: dict[str, list[str]] = {}
        self.texts: list[str] = []
        self._role_stack: list[str | None] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "input":
            self.inputs[values.get("id") or values.get("name") or ""] = values
            return
        self._role_stack.append(values.get("role"))
        if values.get("role"):
            self.roles.setdefault(values["role"], [])

    def handle_endtag(self, tag):
        if tag != "input" and self._role_stack:
            self._role_stack.pop()

    def handle_data(self, data):
        if data.strip():
            self.texts.append(data.strip())
            for role in filter(None, self._role_stack):
                self.roles[role].append(data.strip())

    @property
    def text(self) -> str:
        return " ".join(self.texts)


class PageClient:
    """Drives the pages as a browser would: cookies kept, CSRF field sent back."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.services = api.services
        self.cookies: dict[str, str] = {}

    def _remember(self, result) -> None:
        for cookie in result.cookies.values():
            if cookie.max_age == 0 or cookie.value == "":
                self.cookies.pop(cookie.name, None)
            else:
                self.cookies[cookie.name] = cookie.value

    def _cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def get(self, url: str, headers=None, **kwargs):
        path, _, query = url.partition("?")
        result = self.api.simulate_get(
            path,
            query_string=query or None,
            headers={**self._cookie_header(), **(headers or {})},
            **kwargs,
        )
        self._remember(result)
        return result

    def open_link(self, link: str):
        """Follow a mailed link: the 303 that takes the token out of the URL, then the page."""
        path_and_query = re.sub(r"^https?://[^/]+", "", link)
        first = self.get(path_and_query)
        assert first.status_code == 303, first.text
        assert "token" not in first.headers["Location"]
        return self.get(first.headers["Location"])

    def post(self, path: str, fields: dict[str, str], *, csrf_from=None, follow=True, **kwargs):
        """Send a form; a 303 answer is followed (as a browser does) unless ``follow``
        is false."""
        body = dict(fields)
        if csrf_from is not None:
            body.setdefault("csrf", Html(csrf_from.text).inputs["csrf"]["value"])
        from urllib.parse import urlencode

        result = self.api.simulate_post(
            path,
            body=urlencode(body),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                **self._cookie_header(),
            },
            **kwargs,
        )
        self._remember(result)
        if follow and result.status_code == 303:
            return self.get(result.headers["Location"])
        return result


def make_user(services, email: str, **extra):
    return services.users.create(
        Actor.operator("cli", "tester"),
        RequestContext(),
        {"email": email, "password": STRONG_PASSWORD, **extra},
    )


def reset_link(services, email: str) -> str:
    """Ask for a reset link through the core; the link of the queued mail."""
    services.auth.forgot_password(RequestContext(), {"email": email})
    return newest_link(services, email, "password_reset")


def newest_link(services, email: str, template: str) -> str:
    from sqlalchemy import select

    from usermgmt.core.models import MailMessage

    mail_token(services, email, template)  # asserts there is one
    with services.db.read() as s:
        row = s.execute(
            select(MailMessage)
            .where(MailMessage.to_addr == email, MailMessage.template == template)
            .order_by(MailMessage.created_at.desc())
        ).scalars()
        return next(iter(row)).context["link"]


__all__ = ["API", "NEW_PASSWORD", "PAGE_CSP", "STRONG_PASSWORD", "Html", "PageClient"]
