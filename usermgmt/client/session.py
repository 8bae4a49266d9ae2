"""One HTTP connection to a served API, with its credentials and their refresh.

Credentials are either a stored context (an access token and a rotating refresh
token, kept in the contexts file) or a fixed bearer token from the environment
(an API key, ``USERMGMT_TOKEN``). On a 401 a context refreshes once and resends:
under the contexts file's lock it re-reads the file, and if another process has
already refreshed (the stored access token is not the one that was refused) it
takes that pair instead of spending the refresh token again. Tokens only ever
travel in the Authorization header and the refresh body; they are never part
of a message, an exception or a log record.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from usermgmt import __version__
from usermgmt.client.contexts import Context, ContextStore
from usermgmt.client.errors import error_from
from usermgmt.client.http import httpx
from usermgmt.core.errors import (
    AuthenticationError,
    DomainError,
    InvalidMfaCode,
    NotLoggedIn,
    PermissionDenied,
    ServiceUnavailable,
    ValidationError,
)

API = "/api/v1"
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def normalise_server(url: str, *, allow_http: bool = False) -> str:
    """``https://host[:port]`` without a trailing slash; plain http only to loopback
    unless ``allow_http``."""
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError.for_field("server", "must be an https:// URL (https://host[:port])")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValidationError.for_field(
            "server", "give the server's root URL only (the API lives under /api/v1)"
        )
    if parts.username or parts.password:
        raise ValidationError.for_field("server", "must not hold a user name or password")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise ValidationError.for_field(
            "server",
            f"plain http:// to {parts.hostname} would send tokens in clear text; use "
            "https://, or --allow-http (USERMGMT_ALLOW_HTTP=1) on a network you trust",
        )
    return url


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Credentials:
    """Where the bearer token comes from, and how a refused one is renewed."""

    who: str = ""

    @property
    def as_whom(self) -> str:
        """Who the server refused, for a message: never the token itself."""
        return f"logged in as {self.who}"

    def bearer(self) -> str | None:
        raise NotImplementedError

    def renew(self, conn: Connection, refused: str | None) -> bool:
        """A fresh token after ``refused`` was refused; False when there is none."""
        return False

    def refused(self, conn: Connection) -> NotLoggedIn:
        raise NotImplementedError


class TokenCredentials(Credentials):
    """A fixed token (an API key) from the environment: no refresh."""

    def __init__(self, token: str) -> None:
        self._token = token
        self.who = "USERMGMT_TOKEN"

    @property
    def as_whom(self) -> str:
        return "with the token in USERMGMT_TOKEN"

    def bearer(self) -> str | None:
        return self._token

    def refused(self, conn: Connection) -> NotLoggedIn:
        return NotLoggedIn(
            f"The server {conn.server} refused the token in USERMGMT_TOKEN "
            "(revoked, expired or unknown)"
        )


class ContextCredentials(Credentials):
    """A logged-in context of the contexts file; refreshed with its rotating refresh token."""

    def __init__(self, store: ContextStore, name: str, context: Context) -> None:
        self.store = store
        self.name = name
        self.context = context
        user = context.user or {}
        self.who = user.get("email") or user.get("username") or ""

    def bearer(self) -> str | None:
        return self.context.access_token

    def renew(self, conn: Connection, refused: str | None) -> bool:
        with self.store.locked() as data:
            raw = data["contexts"].get(self.name)
            if raw is None:
                return False
            stored = Context.from_dict(raw)
            if stored.access_token and stored.access_token != refused:
                self.context = stored  # another process refreshed first
                return True
            if not stored.refresh_token:
                return False
            response = conn.send_raw(
                "POST", f"{API}/auth/refresh", json={"refresh_token": stored.refresh_token}
            )
            if response.status_code == 200:
                tokens = response.json()["tokens"]
                raw["access_token"] = tokens["access_token"]
                raw["refresh_token"] = tokens["refresh_token"]
                self.context = Context.from_dict(raw)
                return True
            if response.status_code == 401:  # spent, revoked or expired: nothing to keep
                raw["access_token"] = raw["refresh_token"] = None
                self.context = Context.from_dict(raw)
                return False
            raise error_from(response.status_code, _json(response), conn.server)

    def refused(self, conn: Connection) -> NotLoggedIn:
        if not (self.context.access_token or self.context.refresh_token):
            how = f"usermgmt login --server {conn.server} --context {self.name}"
            return NotLoggedIn(
                f"Not logged in to {conn.server} (context {self.name}), or the session "
                f"expired or was revoked: run `{how}`"
            )
        return NotLoggedIn(f"The server {conn.server} refused the session of context {self.name}")


class Connection:
    def __init__(
        self,
        server: str,
        credentials: Credentials | None,
        *,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = server
        self.credentials = credentials
        if server.startswith("http://"):
            # No redirect is followed, so a plain-http server never leads to TLS:
            # no need to load the CA bundle (tens of milliseconds of every command).
            verify = False
        self._http = httpx.Client(
            base_url=server,
            verify=verify,
            timeout=TIMEOUT,
            follow_redirects=False,
            headers={"User-Agent": f"usermgmt-cli/{__version__}", "Accept": "application/json"},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    # ---- sending ---------------------------------------------------------------

    def send_raw(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        bearer: str | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request, nothing mapped; connection failures are ServiceUnavailable."""
        all_headers = dict(headers or {})
        if bearer:
            all_headers["Authorization"] = f"Bearer {bearer}"
        request = self._http.build_request(
            method, path, params=_params(params), json=json, content=content, headers=all_headers
        )
        try:
            return self._http.send(request, stream=stream)
        except httpx.TimeoutException:
            raise ServiceUnavailable(f"The server {self.server} did not answer in time") from None
        except httpx.ConnectError as exc:
            raise ServiceUnavailable(
                f"Cannot reach the server {self.server} ({_reason(exc)})"
            ) from None
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"The connection to the server {self.server} failed ({_reason(exc)})"
            ) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        request_id: str | None = None,
        stream: bool = False,
        replayable: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """A request as the logged-in principal; an error response raises its domain error.

        A refused access token is renewed once and the request sent again (unless
        its body is a stream that cannot be replayed).
        """
        headers = dict(kwargs.pop("headers", None) or {})
        if request_id:
            headers["X-Request-ID"] = request_id
        creds = self.credentials
        if creds is None:
            raise NotLoggedIn()
        token = creds.bearer()
        if token is None and not creds.renew(self, None):
            raise creds.refused(self)
        token = creds.bearer()
        response = self.send_raw(
            method, path, headers=headers, bearer=token, stream=stream, **kwargs
        )
        if response.status_code == 401 and replayable and not _wrong_code(response):
            _close(response)
            if not creds.renew(self, token):
                raise creds.refused(self)
            response = self.send_raw(
                method, path, headers=headers, bearer=creds.bearer(), stream=stream, **kwargs
            )
        if response.status_code >= 400:
            if stream:
                response.read()
                response.close()
            raise self._error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return _json(response)

    def _error(self, response: httpx.Response) -> DomainError:
        exc = error_from(response.status_code, _json(response), self.server)
        creds = self.credentials
        # A wrong second-factor code is the person's mistake, not a refused session.
        wrong_code = isinstance(exc, InvalidMfaCode)
        if isinstance(exc, AuthenticationError) and not wrong_code and creds is not None:
            return creds.refused(self)
        if isinstance(exc, PermissionDenied) and creds is not None and creds.who:
            exc.message = f"{exc.message.rstrip('.')} ({creds.as_whom} on {self.server})"
            exc.args = (exc.message,)
        return exc

    def lines(self, response: httpx.Response) -> Iterator[str]:
        try:
            yield from response.iter_lines()
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"The connection to the server {self.server} broke ({_reason(exc)})"
            ) from None
        finally:
            response.close()


def _params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        out[key] = str(value) if not isinstance(value, list) else value
    return out


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _wrong_code(response: httpx.Response) -> bool:
    """A 401 for a wrong second-factor code: the session is fine, so no refresh."""
    response.read()
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") == "INVALID_MFA_CODE"


def _close(response: httpx.Response) -> None:
    response.read()
    response.close()


def _reason(exc: Exception) -> str:
    """The cause of a transport error in a few words, without the request's headers."""
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "its TLS certificate is not trusted; set a CA bundle with --ca-bundle"
    return text.splitlines()[0][:200]


def warn_insecure(server: str) -> None:
    sys.stderr.write(
        f"warning: TLS certificate verification is OFF for {server} (--insecure): "
        "anyone on the network path can read and change this session\n"
    )
