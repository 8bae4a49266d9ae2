"""Mail templates: a subject, a plain-text part and an HTML part for each message kind.

Templates are ``string.Template`` files (``$name`` placeholders, ``$$`` for a
literal dollar), bundled in ``usermgmt/core/templates/``:

- ``<kind>.subject`` - one line
- ``<kind>.txt`` - the plain-text part
- ``<kind>.html`` - the HTML body, placed into ``_layout.html`` as ``$content``

When ``USERMGMT_MAIL_TEMPLATES_DIR`` is set, each file is read from there first and
from the bundled set otherwise, so an operator overrides only what they change.
Values are HTML-escaped in the HTML part. Files are read on every render, so an
edited template applies to the next message without a restart.
"""

from __future__ import annotations

import hashlib
import html
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from usermgmt.core.config import Settings
from usermgmt.core.services.outbox import TEMPLATES

LAYOUT = "_layout.html"
PARTS = ("subject", "txt", "html")
# Which token lifetime a link-carrying message states.
LINK_TTL = {
    "verify_email": "verify_token_ttl",
    "password_reset": "reset_token_ttl",
    "invitation": "invite_token_ttl",
}
# Placeholders every template may use; link templates also get link/expires/expires_at,
# email_changed gets old_email/new_email, webhook_disabled webhook_url/webhook_reason.
COMMON_VARIABLES = ("greeting", "name", "email", "site", "public_url", "date")


class TemplateError(Exception):
    """A template is missing or uses a placeholder the message does not provide."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _bundled_dir():
    return resources.files("usermgmt.core") / "templates"


class Renderer:
    def __init__(self, override_dir: Path | None = None) -> None:
        self.override_dir = override_dir

    def source(self, filename: str) -> str:
        """The template text: the override when there is one, else the bundled file."""
        if self.override_dir is not None:
            candidate = self.override_dir / filename
            if candidate.is_file():
                return candidate.read_text(encoding="utf-8")
        bundled = _bundled_dir() / filename
        if not bundled.is_file():
            raise TemplateError(f"no mail template {filename}")
        return bundled.read_text(encoding="utf-8")

    def _fill(self, filename: str, values: Mapping[str, str]) -> str:
        try:
            return string.Template(self.source(filename)).substitute(values)
        except KeyError as exc:
            raise TemplateError(
                f"template {filename} uses ${exc.args[0]}, which this message does not provide"
            ) from None
        except ValueError as exc:
            raise TemplateError(f"template {filename} is malformed: {exc}") from None

    def render(self, template: str, variables: Mapping[str, str]) -> Rendered:
        if template not in TEMPLATES:
            raise TemplateError(f"unknown mail template {template!r}")
        subject = " ".join(self._fill(f"{template}.subject", variables).split())
        text = self._fill(f"{template}.txt", variables).strip() + "\n"
        escaped = {k: html.escape(v, quote=True) for k, v in variables.items()}
        body = self._fill(f"{template}.html", escaped)
        page = self._fill(
            LAYOUT, {**escaped, "subject": html.escape(subject), "content": body.strip()}
        )
        return Rendered(subject=subject, text=text, html=page)

    def check(self, settings: Settings) -> None:
        """Render every template with sample values; raise TemplateError naming the bad file."""
        now = datetime(2026, 1, 1, 12, 0)
        for template in TEMPLATES:
            sample = {
                "link": f"{settings.public_url.rstrip('/')}/check?token=sample",
                "old_email": "old@example.com",
                "new_email": "new@example.com",
                "webhook_url": "https://app.example/hooks",
                "webhook_reason": "failing for 120 hours; last error: HTTP 500",
            }
            self.render(
                template,
                variables_for(
                    settings,
                    template,
                    to_addr="someone@example.com",
                    context=sample,
                    name="Someone",
                    created_at=now,
                ),
            )


def describe_duration(seconds: int) -> str:
    """``3600`` → ``1 hour``, ``86400`` → ``24 hours``, ``604800`` → ``7 days``."""

    def plural(n: int, unit: str) -> str:
        return f"{n} {unit}" if n == 1 else f"{n} {unit}s"

    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return plural(seconds // 86400, "day")
    if seconds % 3600 == 0:
        return plural(seconds // 3600, "hour")
    return plural(max(1, round(seconds / 60)), "minute")


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def variables_for(
    settings: Settings,
    template: str,
    *,
    to_addr: str,
    context: Mapping[str, Any],
    name: str | None,
    created_at: datetime,
) -> dict[str, str]:
    """The placeholder values of one message (never the raw token on its own)."""
    public_url = settings.public_url.rstrip("/")
    values = {
        "greeting": f"Hello {name}," if name else "Hello,",
        "name": name or to_addr,
        "email": to_addr,
        "site": urlsplit(public_url).netloc or public_url,
        "public_url": public_url,
        "date": _when(created_at),
    }
    for key in ("link", "old_email", "new_email", "webhook_url", "webhook_reason"):
        if key in context and context[key] is not None:
            values[key] = str(context[key])
    ttl_setting = LINK_TTL.get(template)
    if ttl_setting is not None:
        ttl = int(getattr(settings, ttl_setting))
        values["expires"] = describe_duration(ttl)
        values["expires_at"] = _when(created_at + timedelta(seconds=ttl))
    return values


def build_message(
    rendered: Rendered,
    *,
    mail_from: str,
    to_addr: str,
    message_id: str,
    date: datetime,
) -> EmailMessage:
    """A multipart/alternative message carrying the stored Message-ID and date.

    Built the same way on every attempt, so a retry after a crash is the same mail.
    """
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = to_addr
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text, cte=transfer_encoding(rendered.text))
    msg.add_alternative(rendered.html, subtype="html", cte=transfer_encoding(rendered.html))
    # A boundary derived from the Message-ID keeps a rebuilt message byte-identical.
    msg.set_boundary("=_" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:40])
    return msg


def transfer_encoding(text: str) -> str:
    """7bit for ASCII, 8bit for other UTF-8; quoted-printable only for lines over 998 bytes.

    Never the library's default quoted-printable for ordinary text: it would break
    the link across lines and turn ``token=`` into ``token=3D`` in the raw message,
    and people do read links straight out of ``.eml`` files.
    """
    if any(len(line.encode("utf-8")) > 998 for line in text.splitlines()):
        return "quoted-printable"
    return "7bit" if text.isascii() else "8bit"
