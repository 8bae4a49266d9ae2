"""The account pages behind the links in mails: confirm an email address, choose a
password from a reset link, accept an invitation. Server-rendered, no JavaScript.

The token never lingers in the address bar, the history or a Referer:
``GET /reset-password?token=T`` puts T in a cookie (HttpOnly, SameSite=Lax, Secure
on HTTPS, scoped to that page's path, 15 minutes) and answers 303 to the bare
page, which reads it from there. The cookie is Lax, not Strict, because a link
opened from webmail is a cross-site navigation: browsers withhold Strict cookies
from every request of that redirect chain, and the page would see no token.

Forms carry a CSRF token: an HMAC (server key) of a random nonce kept in a
Strict cookie; a post without both is refused (403) before anything else.
Each form counts against the rate limit of the API endpoint it stands for, with
the same key, so the pages are no way around the API's limits.
"""

from __future__ import annotations

import logging
import urllib.parse

import falcon

from usermgmt.api.errors import UNAVAILABLE_RETRY_AFTER, status_for
from usermgmt.api.middleware import ClientIpResolver, is_https
from usermgmt.api.pages.render import PageRenderer
from usermgmt.api.resources import (
    FORGOT_MESSAGE,
    ForgotPasswordResource,
    ResendVerificationResource,
    ResetPasswordResource,
    VerifyEmailResource,
)
from usermgmt.core import passwords
from usermgmt.core.errors import (
    DomainError,
    InvalidToken,
    RateLimited,
    ServiceUnavailable,
    ValidationError,
)
from usermgmt.core.services.account_pages import NEW_VERIFICATION_MESSAGE

log = logging.getLogger("usermgmt.api.pages")

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
STYLESHEET_PATH = "/pages/style.css"
TOKEN_COOKIE = "usermgmt_link"
CSRF_COOKIE = "usermgmt_csrf"
# Which result the bare page shows after a successful post (303 to it), so that
# reloading the result shows it again instead of sending the form twice.
RESULT_COOKIE = "usermgmt_result"
TOKEN_COOKIE_SECONDS = 900
CSRF_COOKIE_SECONDS = 3600
RESULT_COOKIE_SECONDS = 300
MAX_FORM_BYTES = 8192
HTML = "text/html; charset=utf-8"
POLICY_HINT = (
    f"At least {passwords.MIN_LENGTH} characters, with an uppercase letter and a digit; "
    f"at most {passwords.BCRYPT_MAX_BYTES} bytes; not a common password."
)
# The API operation whose rate limit each form shares (the limiter's scope is the
# responder's qualified name, as the API's operation decorator uses it).
SUBMIT_SCOPE = {
    "verify": VerifyEmailResource.on_post.__qualname__,
    "reset": ResetPasswordResource.on_post.__qualname__,
    "invite": ResetPasswordResource.on_post.__qualname__,
}
NEW_LINK_SCOPE = {
    "verify": ResendVerificationResource.on_post.__qualname__,
    "reset": ForgotPasswordResource.on_post.__qualname__,
    "invite": ForgotPasswordResource.on_post.__qualname__,
}
DONE = {"verify": "verify_done", "reset": "reset_done", "invite": "invite_done"}
SENT = "new_link_sent"


class PageBase:
    """What every account page resource declares to the middleware."""

    public = True  # no bearer token: the link (or the form) is the credential
    no_store = True
    reads_own_body = True  # a form, not the API's JSON
    content_security_policy = PAGE_CSP


class StylesheetResource(PageBase):
    no_store = False

    def __init__(self, renderer: PageRenderer) -> None:
        self.css = renderer.stylesheet()

    def on_get(self, req, resp):
        resp.content_type = "text/css; charset=utf-8"
        resp.set_header("Cache-Control", "no-cache")
        resp.data = self.css


class LinkPage(PageBase):
    """One page of ``page`` (verify, reset or invite) at ``path``."""

    def __init__(self, services, limiter, renderer: PageRenderer, page: str, path: str) -> None:
        self.services = services
        self.limiter = limiter
        self.renderer = renderer
        self.page = page
        self.path = path
        self.resolver = ClientIpResolver(services.runtime.api_options.trusted_proxies)

    # ---- GET -------------------------------------------------------------------

    def on_get(self, req, resp):
        self._guarded(req, resp, self._get)

    def _get(self, req, resp):
        if req.query_string:
            # Keep the token (if any) out of the URL from here on: cookie, then the bare page.
            token = req.get_param("token")
            if token:
                self._set_cookie(req, resp, TOKEN_COOKIE, token, TOKEN_COOKIE_SECONDS, "Lax")
            resp.status = falcon.HTTP_303
            resp.location = self.path
            return
        raw = self._cookie(req, TOKEN_COOKIE)
        result = self._cookie(req, RESULT_COOKIE)
        if not raw and result in (DONE[self.page], SENT):  # a reload shows it again
            self._message(req, resp, result, sent_message=self._sent_message())
            return
        state = self.services.account_pages.link_state(self.page, raw) if raw else None
        if state is None:
            if raw:
                self._clear_token(req, resp)
            self._render(req, resp, "link_invalid.html", status=400, reason="invalid", email="")
            return
        self._show_form(req, resp, state.email)

    def _show_form(self, req, resp, email: str, *, field_errors=None, status=200) -> None:
        field_errors = field_errors or {}
        if self.page == "verify":
            self._render(req, resp, "verify_email.html", status=status, email=email)
            return
        focus = next(iter(field_errors), "new_password")
        self._render(
            req,
            resp,
            "set_password.html",
            status=status,
            email=email,
            policy=POLICY_HINT,
            field_errors=field_errors,
            focus=focus,
            errors=_summary(field_errors),
        )

    # ---- POST ------------------------------------------------------------------

    def on_post(self, req, resp):
        self._guarded(req, resp, self._post)

    def _post(self, req, resp):
        form = _read_form(req)
        if form is None:
            self._message(req, resp, "bad_request", status=400)
            return
        if not self.services.account_pages.csrf_ok(
            self._cookie(req, CSRF_COOKIE), form.get("csrf")
        ):
            self._message(req, resp, "csrf_failed", status=403)
            return
        if form.get("intent") == "new_link":
            self._new_link(req, resp, form)
            return
        self._hit(req, SUBMIT_SCOPE[self.page])
        raw = self._cookie(req, TOKEN_COOKIE)
        if not raw:
            self._render(
                req, resp, "link_invalid.html", status=400, reason="expired_session", email=""
            )
            return
        if self.page == "verify":
            self._verify(req, resp, raw)
        else:
            self._set_password(req, resp, raw, form)

    def _verify(self, req, resp, raw: str) -> None:
        try:
            self.services.auth.verify_email(req.context.request_context, {"token": raw})
        except (InvalidToken, ValidationError):
            self._link_used(req, resp)
            return
        self._clear_token(req, resp)
        self._show_result(req, resp, DONE[self.page])

    def _set_password(self, req, resp, raw: str, form: dict[str, str]) -> None:
        new, again = form.get("new_password", ""), form.get("confirm_password", "")
        state = self.services.account_pages.link_state(self.page, raw)
        if state is None:
            self._link_used(req, resp)
            return
        if new != again:
            errors = {"confirm_password": ["The two passwords are not the same."]}
            self._show_form(req, resp, state.email, field_errors=errors, status=400)
            return
        try:
            self.services.auth.reset_password(
                req.context.request_context, {"token": raw, "new_password": new}
            )
        except InvalidToken:
            self._link_used(req, resp)
            return
        except ValidationError as exc:
            problems = exc.field_errors or {}
            if "token" in problems:
                self._link_used(req, resp)
                return
            messages = [m for field in problems.values() for m in field] or [exc.message]
            errors = {"new_password": [_about_the_password(m) for m in messages]}
            self._show_form(req, resp, state.email, field_errors=errors, status=400)
            return
        self._clear_token(req, resp)
        self._show_result(req, resp, DONE[self.page])

    def _new_link(self, req, resp, form: dict[str, str]) -> None:
        self._hit(req, NEW_LINK_SCOPE[self.page])
        email = form.get("email", "").strip()
        ctx = req.context.request_context
        try:
            if self.page == "verify":
                self.services.account_pages.send_verification_to(ctx, {"email": email})
            else:
                self.services.auth.forgot_password(ctx, {"email": email})
        except ValidationError:
            errors = {"email": ["Enter the email address of your account."]}
            self._render(
                req,
                resp,
                "link_invalid.html",
                status=400,
                reason="invalid",
                email=email,
                field_errors=errors,
                errors=_summary(errors),
            )
            return
        self._show_result(req, resp, SENT)

    def _sent_message(self) -> str:
        return NEW_VERIFICATION_MESSAGE if self.page == "verify" else FORGOT_MESSAGE

    def _show_result(self, req, resp, result: str) -> None:
        """Post/redirect/get: 303 to the bare page, which shows ``result`` (again on a
        reload, for a few minutes)."""
        self._set_cookie(req, resp, RESULT_COOKIE, result, RESULT_COOKIE_SECONDS, "Strict")
        resp.status = falcon.HTTP_303
        resp.location = self.path

    def _link_used(self, req, resp) -> None:
        self._clear_token(req, resp)
        self._render(req, resp, "link_invalid.html", status=400, reason="invalid", email="")

    # ---- plumbing --------------------------------------------------------------

    def _guarded(self, req, resp, handler) -> None:
        """Domain errors (rate limit, database down) as pages, never the API's JSON."""
        try:
            handler(req, resp)
        except RateLimited as exc:
            retry = exc.details.get("retry_after", 60)
            resp.set_header("Retry-After", str(retry))
            self._message(req, resp, "rate_limited", status=429, retry_after=retry)
        except ServiceUnavailable:
            resp.set_header("Retry-After", str(UNAVAILABLE_RETRY_AFTER))
            self._message(req, resp, "unavailable", status=503)
        except DomainError as exc:  # nothing a visitor can fix by changing the form
            log.warning("account page %s: %s", self.path, exc.code)
            self._message(req, resp, "bad_request", status=status_for(exc))

    def _hit(self, req, scope: str) -> None:
        self.limiter.hit("auth", scope, req.context.client_ip or "unknown")

    def _message(self, req, resp, message: str, *, status: int = 200, **values) -> None:
        values.setdefault("retry_after", 0)
        values.setdefault("sent_message", "")
        self._render(req, resp, "message.html", status=status, message=message, **values)

    def _render(self, req, resp, template: str, *, status: int, **values) -> None:
        values.setdefault("errors", [])
        values.setdefault("field_errors", {})
        nonce = self._cookie(req, CSRF_COOKIE)
        if not nonce or len(nonce) > 128:
            nonce = self.services.account_pages.new_csrf_nonce()
        self._set_cookie(req, resp, CSRF_COOKIE, nonce, CSRF_COOKIE_SECONDS, "Strict")
        resp.status = status
        resp.content_type = HTML
        resp.text = self.renderer.render(
            template,
            {
                "site": req.host,
                "stylesheet": STYLESHEET_PATH,
                "page": self.page,
                "action": self.path,
                "again": self.path,
                "csrf": self.services.account_pages.csrf_token(nonce),
                **values,
            },
        )

    @staticmethod
    def _cookie(req, name: str) -> str | None:
        values = req.get_cookie_values(name)
        return values[0] if values else None

    def _set_cookie(self, req, resp, name, value, seconds: int, same_site: str) -> None:
        resp.set_cookie(
            name,
            value,
            max_age=seconds,
            path=self.path,
            secure=is_https(req, self.resolver),
            http_only=True,
            same_site=same_site,
        )

    def _clear_token(self, req, resp) -> None:
        resp.unset_cookie(TOKEN_COOKIE, path=self.path)


def _about_the_password(problem: str) -> str:
    """The core's "must contain a digit" as "The password must contain a digit."."""
    if problem[:1].islower():
        return f"The password {problem.rstrip('.')}."
    return problem


def _summary(field_errors: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(field, message) for field, messages in field_errors.items() for message in messages]


def _read_form(req) -> dict[str, str] | None:
    """An ``application/x-www-form-urlencoded`` body: the first value of each field."""
    mime = (req.content_type or "").partition(";")[0].strip().lower()
    if mime != falcon.MEDIA_URLENCODED:
        return None
    raw = req.bounded_stream.read(MAX_FORM_BYTES + 1)
    if len(raw) > MAX_FORM_BYTES:
        return None
    try:
        pairs = urllib.parse.parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20
        )
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def page_routes(services, limiter) -> list[tuple[str, object]]:
    """The routes of the account pages; paths are the ones the mails link to."""
    renderer = PageRenderer(services.account_pages.templates_dir)
    renderer.check(_samples())
    routes: list[tuple[str, object]] = [(STYLESHEET_PATH, StylesheetResource(renderer))]
    for page, path in services.account_pages.page_paths().items():
        routes.append((path, LinkPage(services, limiter, renderer, page, path)))
    return routes


def _samples() -> dict[str, list[dict]]:
    """Values to test-render every template with (at start-up), each branch once."""
    base = {
        "site": "example.com",
        "stylesheet": STYLESHEET_PATH,
        "action": "/reset-password",
        "again": "/reset-password",
        "csrf": "0" * 64,
        "errors": [("new_password", "The password is too common.")],
        "field_errors": {"new_password": ["The password is too common."]},
        "email": "someone@example.com",
    }
    messages = [*DONE.values(), SENT, "csrf_failed", "rate_limited"]
    messages += ["unavailable", "bad_request"]
    return {
        "set_password.html": [
            {**base, "page": page, "policy": POLICY_HINT, "focus": "new_password"}
            for page in ("reset", "invite")
        ],
        "verify_email.html": [{**base, "page": "verify"}],
        "link_invalid.html": [
            {**base, "page": page, "reason": reason}
            for page in ("verify", "reset")
            for reason in ("invalid", "expired_session")
        ],
        "message.html": [
            {**base, "page": "reset", "message": m, "retry_after": 30, "sent_message": "Sent."}
            for m in messages
        ],
    }
