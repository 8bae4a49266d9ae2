"""Where a built message goes: an SMTP server, or ``.eml`` files in a folder.

A transport hands out a *session* (``with transport.session() as conn:``) whose
``send(message)`` returns a short description of where the message went, or
raises :class:`DeliveryError`. An SMTP session keeps one connection for a batch
and reconnects after an error.

``USERMGMT_SMTP_URL`` forms::

    smtp://host                      port 25, plain
    smtp://host:587?starttls=true    STARTTLS (port 587 when none is given)
    smtps://user:pass@host           implicit TLS (port 465 when none is given)
    …?timeout=20                     socket timeout in seconds (default 30)

User name and password are percent-decoded. Certificates are verified against
the system trust store (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name another).
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as DEFAULT_POLICY
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from usermgmt.core.errors import ConfigurationError
from usermgmt.core.private_files import private_dir

log = logging.getLogger("usermgmt.mail")

DEFAULT_TIMEOUT = 30.0
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class DeliveryError(Exception):
    """A message was not accepted.

    ``server_down`` is true when nothing can be delivered right now (no connection,
    TLS or login failed, disk not writable); the deliverer then stops the run instead
    of trying every other message against the same dead server.
    """

    def __init__(self, message: str, *, server_down: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.server_down = server_down


class Session(Protocol):
    def send(self, message: EmailMessage) -> str: ...


class Transport(Protocol):
    name: str

    def session(self) -> AbstractContextManager[Session]: ...

    def describe(self) -> str: ...


# ---- SMTP ------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None
    timeout: float

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse ``USERMGMT_SMTP_URL``; errors never repeat the URL (it may hold a password)."""
        name = "USERMGMT_SMTP_URL"
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise ConfigurationError(f"{name}: not a valid URL") from None
        if parts.scheme not in ("smtp", "smtps"):
            raise ConfigurationError(f"{name}: scheme must be smtp:// or smtps://")
        if not parts.hostname:
            raise ConfigurationError(f"{name}: no host")
        if parts.path not in ("", "/"):
            raise ConfigurationError(f"{name}: unexpected path")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - {"starttls", "timeout"}
        if unknown:
            raise ConfigurationError(
                f"{name}: unknown option(s) {', '.join(sorted(unknown))} (known: starttls, timeout)"
            )
        starttls = False
        if "starttls" in query:
            flag = query["starttls"][-1].lower()
            if flag not in TRUE | FALSE:
                raise ConfigurationError(f"{name}: starttls must be true or false")
            starttls = flag in TRUE
        implicit = parts.scheme == "smtps"
        if implicit and starttls:
            raise ConfigurationError(f"{name}: smtps:// is already TLS; drop starttls=true")
        timeout = DEFAULT_TIMEOUT
        if "timeout" in query:
            try:
                timeout = float(query["timeout"][-1])
            except ValueError:
                timeout = -1
            if not 0 < timeout <= 600:
                raise ConfigurationError(f"{name}: timeout must be 0-600 seconds")
        if port is None:
            port = 465 if implicit else (587 if starttls else 25)
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(parts.hostname, port, implicit, starttls, username, password, timeout)

    def masked(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        auth = f"{self.username}:***@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = "?starttls=true" if self.starttls else ""
        return f"{scheme}://{auth}{host}:{self.port}{query}"


class SmtpTransport:
    """SMTP with smtplib: plain, STARTTLS or implicit TLS, optional login."""

    name = "smtp"

    def __init__(self, config: SmtpConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self._ssl_context = ssl_context
        if (
            config.password is not None
            and not (config.implicit_tls or config.starttls)
            and config.host not in LOOPBACK
        ):
            log.warning(
                "SMTP login to %s without TLS: the password crosses the network in clear; "
                "use smtps:// or ?starttls=true",
                config.host,
            )

    @classmethod
    def from_url(cls, url: str, **kwargs) -> SmtpTransport:
        return cls(SmtpConfig.from_url(url), **kwargs)

    def describe(self) -> str:
        return self.config.masked()

    def ssl_context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    @contextmanager
    def session(self) -> Iterator[_SmtpSession]:
        conn = _SmtpSession(self)
        try:
            yield conn
        finally:
            conn.close()


class _SmtpSession:
    def __init__(self, transport: SmtpTransport) -> None:
        self._t = transport
        self._smtp: smtplib.SMTP | None = None

    def _scrub(self, text: str) -> str:
        password = self._t.config.password
        if password:
            text = text.replace(password, "***")
        return " ".join(text.split())[:500]

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            parts = [f"{code} {_decode(reply)}" for code, reply in exc.recipients.values()] or [
                "all recipients refused"
            ]
            text = "recipient refused: " + "; ".join(parts)
        elif isinstance(exc, smtplib.SMTPResponseException):
            text = f"{type(exc).__name__}: {exc.smtp_code} {_decode(exc.smtp_error)}"
        elif isinstance(exc, TimeoutError) or (
            isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc)
        ):
            text = f"timed out after {self._t.config.timeout:g}s"
        else:
            text = f"{type(exc).__name__}: {exc}"
        return self._scrub(f"{self._t.config.host}:{self._t.config.port}: {text}")

    def _connect(self) -> smtplib.SMTP:
        cfg = self._t.config
        local = socket.gethostname() or "localhost"
        smtp: smtplib.SMTP | None = None
        try:
            if cfg.implicit_tls:
                smtp = smtplib.SMTP_SSL(
                    cfg.host,
                    cfg.port,
                    local_hostname=local,
                    timeout=cfg.timeout,
                    context=self._t.ssl_context(),
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, local_hostname=local, timeout=cfg.timeout)
            smtp.ehlo()
            if cfg.starttls:
                smtp.starttls(context=self._t.ssl_context())
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, cfg.password or "")
        except (smtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                _close_quietly(smtp)
            raise DeliveryError(self._describe(exc), server_down=True) from None
        return smtp

    def send(self, message: EmailMessage) -> str:
        if self._smtp is None:
            self._smtp = self._connect()
        options: list[str] = []
        if _has_8bit(message) and self._smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        try:
            refused = self._smtp.send_message(message, mail_options=options)
        except (smtplib.SMTPException, OSError) as exc:
            # A refusal (a reply code) leaves the server usable; a broken connection does not.
            # (SMTPException subclasses OSError, hence the order of the checks.)
            down = isinstance(exc, smtplib.SMTPServerDisconnected) or not isinstance(
                exc, smtplib.SMTPException
            )
            if down:
                _close_quietly(self._smtp)
                self._smtp = None
            raise DeliveryError(self._describe(exc), server_down=down) from None
        if refused:  # only possible with several recipients; we send to one
            raise DeliveryError(
                self._describe(smtplib.SMTPRecipientsRefused(refused)), server_down=False
            )
        return f"{self._t.config.host}:{self._t.config.port}"

    def close(self) -> None:
        if self._smtp is not None:
            _close_quietly(self._smtp)
            self._smtp = None


def _has_8bit(message: EmailMessage) -> bool:
    return any(part.get("Content-Transfer-Encoding") == "8bit" for part in message.walk())


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _close_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


# ---- files -----------------------------------------------------------------


class FileTransport:
    """Writes each message as ``<message-id>.eml`` into a folder (mode 0700, files 0600).

    The file name comes from the stored Message-ID, so a retried message
    overwrites its own file instead of adding a second one.
    """

    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def describe(self) -> str:
        return f"files in {self.directory}"

    @contextmanager
    def session(self) -> Iterator[FileTransport]:
        yield self

    def path_for(self, message_id: str) -> Path:
        stem = "".join(c if c.isalnum() or c in "@.-_" else "_" for c in message_id.strip("<>"))
        stem = stem.lstrip(".")  # no hidden files, no "..": the name stays in the folder
        return self.directory / f"{stem or 'message'}.eml"

    def send(self, message: EmailMessage) -> str:
        target = self.path_for(str(message["Message-ID"] or ""))
        data = message.as_bytes(policy=DEFAULT_POLICY)  # LF line ends: readable with cat
        try:
            private_dir(self.directory)  # messages hold links with live tokens
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")  # 0600
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise DeliveryError(
                f"cannot write {target}: {exc.strerror or exc}", server_down=True
            ) from None
        log.info("mail written to %s", target)
        return str(target)


def transport_from_settings(settings) -> SmtpTransport | FileTransport:
    """SMTP when ``USERMGMT_SMTP_URL`` is set, else the file transport into the mail dir."""
    if settings.smtp_url is not None and settings.smtp_url.get_secret_value().strip():
        return SmtpTransport.from_url(settings.smtp_url.get_secret_value())
    return FileTransport(settings.effective_mail_dir)
