"""The ports of ``usermgmt.core.ports`` over the REST API.

Each operation is one call (or a cursor walk) of /api/v1 as the logged-in
principal; the ``actor`` argument the ports take is the embedded caller's and
is not sent (the server knows who is calling), the request context's id is.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from usermgmt.client.session import API, Connection
from usermgmt.client.wire import WireUser, WireUserPage, WireUserRows
from usermgmt.core.clock import SYSTEM_CLOCK
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from usermgmt.core.ids import RandomIds
from usermgmt.core.results import (
    BULK_ACTIONS,
    BulkAction,
    BulkFailure,
    BulkOutcome,
    ChainHead,
    ChainReport,
    ImportReport,
    PurgeReport,
    RowError,
)

# The models are imported where they are used: a listing of users validates none
# (``usermgmt.client.wire``), so it never imports pydantic.
if TYPE_CHECKING:
    from usermgmt.client.login import ContextLogin
    from usermgmt.core.key_schemas import ApiKeyCreated, ApiKeyList
    from usermgmt.core.mfa_schemas import MfaStatus, RecoveryCodes, TotpSetup
    from usermgmt.core.schemas import AuditPage, RoleOut, SessionOut, UserOut, UserPage, UserRows

PAGE = 100  # the API's largest page of users
UPLOAD_PIECE = 64 * 1024  # bytes of JSON lines per piece of an import upload


def _rid(ctx: RequestContext | None) -> str | None:
    return ctx.request_id if ctx is not None else None


def _is_uuid(ref: str) -> bool:
    try:
        uuid.UUID(ref)
    except ValueError:
        return False
    return True


def _user(body: Any) -> UserOut:
    return cast("UserOut", WireUser(body))


def _query(query: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in dict(query or {}).items() if v is not None}


class _Port:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn


class RemoteUserReads(_Port):
    def get(self, actor: Actor, user_id: str, *, include_deleted: bool = False) -> UserOut:
        if not _is_uuid(user_id):
            raise NotFound("User not found")
        params = {"include_deleted": True} if include_deleted else None
        return _user(self.conn.json("GET", f"{API}/users/{user_id}", params=params))

    def find(self, actor: Actor, ref: str, *, include_deleted: bool = False) -> UserOut:
        ref = ref.strip()
        if _is_uuid(ref):
            return self.get(actor, ref, include_deleted=include_deleted)
        params: dict[str, Any] = {"ref": ref}
        if include_deleted:
            params["include_deleted"] = True
        return _user(self.conn.json("GET", f"{API}/users/resolve", params=params))

    def resolve_id(self, actor: Actor, ref: str, *, include_deleted: bool = True) -> str:
        if _is_uuid(ref.strip()):
            return str(uuid.UUID(ref.strip()))  # the server says if it exists
        return str(self.find(actor, ref, include_deleted=include_deleted).id)

    def list(self, actor: Actor, query: Mapping[str, Any] | None = None) -> UserPage:
        body = self.conn.json("GET", f"{API}/users", params=_query(query))
        return cast("UserPage", WireUserPage(body))

    def list_rows(
        self,
        actor: Actor,
        query: Mapping[str, Any] | None = None,
        *,
        total: int | None = None,
        skip: int = 0,
    ) -> UserRows:
        q = _query(query)
        page = self.list(actor, q)
        data = page.data
        while skip and page.meta.next_cursor:  # the API has no skip: walk the pages
            drop = min(skip, len(data))
            data, skip = data[drop:], skip - drop
            if data or not page.meta.next_cursor:
                break
            page = self.list(actor, {**q, "cursor": page.meta.next_cursor})
            data = page.data
        return cast("UserRows", WireUserRows(data[skip:], page.meta.next_cursor))

    def count(self, actor: Actor, query: Mapping[str, Any] | None = None) -> int:
        q = {k: v for k, v in _query(query).items() if k not in ("cursor", "page", "sort")}
        return self.list(actor, {**q, "limit": 1}).meta.total

    def stream(self, actor: Actor, query: Mapping[str, Any] | None = None) -> Iterator[UserOut]:
        q = {**_query(query), "limit": PAGE}
        q.pop("page", None)
        first = self.list(actor, q)  # permissions and a bad cursor fail now

        def users() -> Iterator[UserOut]:
            page = first
            while True:
                yield from page.data
                if not page.meta.next_cursor:
                    return
                page = self.list(actor, {**q, "cursor": page.meta.next_cursor})

        return users()


class RemoteUsers(_Port):
    def create(self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]) -> UserOut:
        body = self.conn.json("POST", f"{API}/users", json=dict(data), request_id=_rid(ctx))
        return _user(body)

    def ensure(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]
    ) -> tuple[Any, UserOut]:
        body = self.conn.json("POST", f"{API}/users/ensure", json=dict(data), request_id=_rid(ctx))
        return body["result"], _user(body["user"])

    def update(
        self, actor: Actor, ctx: RequestContext, user_id: str, data: Mapping[str, Any]
    ) -> UserOut:
        body = self.conn.json(
            "PATCH", f"{API}/users/{user_id}", json=dict(data), request_id=_rid(ctx)
        )
        return _user(body)

    def delete(self, actor: Actor, ctx: RequestContext, user_id: str) -> None:
        self.conn.json("DELETE", f"{API}/users/{user_id}", request_id=_rid(ctx))

    def _post(self, ctx: RequestContext, path: str, body: Any = None) -> UserOut:
        return _user(self.conn.json("POST", path, json=body, request_id=_rid(ctx)))

    def restore(self, actor: Actor, ctx: RequestContext, user_id: str) -> UserOut:
        return self._post(ctx, f"{API}/users/{user_id}/restore")

    def lock(
        self, actor: Actor, ctx: RequestContext, user_id: str, minutes: int | None = None
    ) -> UserOut:
        body = {"minutes": minutes} if minutes is not None else None
        return self._post(ctx, f"{API}/users/{user_id}/lock", body)

    def unlock(self, actor: Actor, ctx: RequestContext, user_id: str) -> UserOut:
        return self._post(ctx, f"{API}/users/{user_id}/unlock")

    def set_password(self, actor: Actor, ctx: RequestContext, user_id: str, password: str) -> None:
        self.conn.json(
            "PUT",
            f"{API}/users/{user_id}/password",
            json={"password": password},
            request_id=_rid(ctx),
        )

    def send_reset_link(self, actor: Actor, ctx: RequestContext, user_id: str) -> None:
        """Through the public forgot-password flow: the user gets the same mail."""
        user = _user(self.conn.json("GET", f"{API}/users/{user_id}"))
        self.conn.json(
            "POST", f"{API}/auth/forgot-password", json={"email": user.email},
            request_id=_rid(ctx),
        )  # fmt: skip

    def bulk(
        self,
        actor: Actor,
        ctx: RequestContext,
        action: BulkAction,
        user_ids: Sequence[str],
        *,
        minutes: int | None = None,
    ) -> BulkOutcome:
        """The API has no bulk endpoint: one call per user, each audited with the
        context's request id; a user the server refuses (not found, conflict) is counted."""
        if action not in BULK_ACTIONS:
            raise ValidationError.for_field("action", f"must be one of {', '.join(BULK_ACTIONS)}")
        outcome = BulkOutcome()
        for user_id in user_ids:
            try:
                if action == "lock":
                    self.lock(actor, ctx, user_id, minutes)
                elif action == "unlock":
                    self.unlock(actor, ctx, user_id)
                elif action == "delete":
                    self.delete(actor, ctx, user_id)
                elif action == "restore":
                    self.restore(actor, ctx, user_id)
                else:
                    self.conn.json(
                        "DELETE", f"{API}/users/{user_id}/sessions", request_id=_rid(ctx)
                    )
            except (NotFound, Conflict) as exc:
                outcome.failed.append(BulkFailure(str(user_id), exc.code, exc.message))
            else:
                outcome.done.append(str(user_id))
        return outcome


class RemoteRoles(_Port):
    def list(self, actor: Actor) -> list[RoleOut]:
        from usermgmt.core.schemas import RoleOut

        body = self.conn.json("GET", f"{API}/roles")
        return [RoleOut.model_validate(r) for r in body["data"]]

    def _set(self, ctx: RequestContext, user_id: str, change: Callable[[list[str]], list[str]]):
        current = _user(self.conn.json("GET", f"{API}/users/{user_id}"))
        roles = change(list(current.roles))
        if roles == list(current.roles):
            return current
        body = self.conn.json(
            "PUT", f"{API}/users/{user_id}/roles", json={"roles": roles}, request_id=_rid(ctx)
        )
        return _user(body)

    def set(self, actor: Actor, ctx: RequestContext, user_id: str, roles: Any) -> UserOut:
        wanted = roles.get("roles") if isinstance(roles, Mapping) else roles
        body = self.conn.json(
            "PUT",
            f"{API}/users/{user_id}/roles",
            json={"roles": list(wanted or [])},
            request_id=_rid(ctx),
        )
        return _user(body)

    def grant(self, actor: Actor, ctx: RequestContext, user_id: str, role: str) -> UserOut:
        return self._set(ctx, user_id, lambda roles: roles if role in roles else [*roles, role])

    def revoke(self, actor: Actor, ctx: RequestContext, user_id: str, role: str) -> UserOut:
        return self._set(ctx, user_id, lambda roles: [r for r in roles if r != role])


class RemoteSessions(_Port):
    def list(self, actor: Actor, user_id: str) -> list[SessionOut]:
        from usermgmt.core.schemas import SessionOut

        body = self.conn.json("GET", f"{API}/users/{user_id}/sessions")
        return [SessionOut.model_validate(s) for s in body["data"]]

    def revoke_all(self, actor: Actor, ctx: RequestContext, user_id: str) -> int:
        live = len(self.list(actor, user_id))
        self.conn.json("DELETE", f"{API}/users/{user_id}/sessions", request_id=_rid(ctx))
        return live

    def revoke(self, actor: Actor, ctx: RequestContext, session_id: str) -> None:
        if not _is_uuid(session_id):
            raise NotFound("Session not found")
        self.conn.json("DELETE", f"{API}/sessions/{session_id}", request_id=_rid(ctx))


class RemoteAudit(_Port):
    def query(self, actor: Actor, query: Mapping[str, Any] | None = None) -> AuditPage:
        params = {
            k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in _query(query).items()
        }
        from usermgmt.core.schemas import AuditPage

        return AuditPage.model_validate(self.conn.json("GET", f"{API}/audit", params=params))

    def verify(
        self,
        actor: Actor,
        expect_head: str | ChainHead | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> ChainReport:
        # One request: the server checks the chain and answers once, so there is no
        # progress to report (the console shows an indeterminate wait instead).
        body = self.conn.json(
            "POST",
            f"{API}/audit/verify",
            json={"expect_head": str(expect_head)} if expect_head is not None else None,
        )
        head = body.get("head")
        if isinstance(head, dict):
            head = ChainHead(int(head["seq"]), head["hash"])
        elif isinstance(head, str) and ":" in head:
            seq, _, digest = head.partition(":")
            head = ChainHead(int(seq), digest)
        return ChainReport(
            ok=bool(body["ok"]),
            checked=int(body.get("checked", 0)),
            bad_seq=body.get("bad_seq"),
            bad_id=uuid.UUID(body["bad_id"]) if body.get("bad_id") else None,
            reason=body.get("reason"),
            head=head,
            users_without_creation=tuple(
                uuid.UUID(u) for u in body.get("users_without_creation") or ()
            ),
            users_without_creation_count=int(body.get("users_without_creation_count") or 0),
        )

    def head(self) -> ChainHead:
        body = self.conn.json("GET", f"{API}/audit/head")
        return ChainHead(int(body["seq"]), body["hash"])


class RemoteMaintenance(_Port):
    def purge(
        self,
        actor: Actor,
        ctx: RequestContext,
        *,
        dry_run: bool = False,
        progress: Callable[[str, int], None] | None = None,
    ) -> PurgeReport:
        body = self.conn.json(
            "POST",
            f"{API}/maintenance/purge",
            params={"dry_run": dry_run},
            request_id=_rid(ctx),
        )
        counts = body.get("counts", body) if isinstance(body, dict) else {}
        counts = {k: int(v) for k, v in counts.items() if isinstance(v, int | float)}
        counts.pop("total", None)
        if progress is not None:
            for kind, n in counts.items():
                progress(kind, n)
        return PurgeReport(dry_run=dry_run, counts=counts)


class RemoteTransfer(_Port):
    def import_users(
        self,
        actor: Actor,
        ctx: RequestContext,
        rows: Iterable[tuple[int, dict[str, Any] | RowError]],
        *,
        on_conflict: str = "fail",
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
        max_errors: int | None = None,
    ) -> ImportReport:
        """The rows go up as a stream of JSON lines, read as they are sent (flat memory).

        The server numbers the lines it receives; they are mapped back to the file's
        (one int per row is kept). A row the CLI could not parse goes up as ``{}``,
        which the server refuses as a bad row, so it counts, stops an import at
        ``max_errors`` and keeps ``on_conflict=fail`` from writing anything exactly
        as embedded; its reason is the CLI's own.
        """
        lines: list[int] = []
        unparsed: dict[int, str] = {}

        def body() -> Iterator[bytes]:
            piece: list[str] = []
            size = 0
            for line, record in rows:
                lines.append(line)
                if isinstance(record, RowError):
                    unparsed[len(lines)] = record.reason
                    record = {}
                text = json.dumps(record, ensure_ascii=False) + "\n"
                piece.append(text)
                size += len(text)
                if size >= UPLOAD_PIECE:
                    if progress is not None:
                        progress(len(piece))
                    yield "".join(piece).encode("utf-8")
                    piece.clear()
                    size = 0
            if piece:
                if progress is not None:
                    progress(len(piece))
                yield "".join(piece).encode("utf-8")

        self.conn.json("GET", f"{API}/auth/me")  # a stream cannot be sent twice: refresh first
        try:
            response = self.conn.json(
                "POST",
                f"{API}/users/import",
                params={
                    "format": "jsonl",
                    "on_conflict": on_conflict,
                    "dry_run": dry_run,
                    "max_errors": max_errors or 0,  # 0: no limit
                },
                content=body(),
                headers={"Content-Type": "application/x-ndjson"},
                request_id=_rid(ctx),
                replayable=False,
            )
        except ValidationError as exc:  # a refusal that carries the report
            if not isinstance(exc.details.get("errors"), list):
                raise
            response = exc.details
        report = response.get("report", response) if isinstance(response, dict) else {}

        def original(line: int) -> int:
            return lines[line - 1] if 0 < line <= len(lines) else line

        errors = [
            RowError(original(int(e["line"])), unparsed.get(int(e["line"]), e["reason"]))
            for e in report.get("errors", [])
        ]
        stopped = report.get("stopped_at_line")
        return ImportReport(
            created=int(report.get("created", 0)),
            updated=int(report.get("updated", 0)),
            skipped=int(report.get("skipped", 0)),
            errors=errors,
            committed=bool(report.get("committed")),
            dry_run=bool(report.get("dry_run", dry_run)),
            rows=int(report.get("rows", len(lines))),
            stopped_at_line=original(int(stopped)) if stopped else None,
            not_checked=int(report.get("not_checked", 0)),
        )

    def export_users(
        self,
        actor: Actor,
        *,
        include_deleted: bool = False,
        include_password_hash: bool = False,
        ctx: RequestContext | None = None,
    ) -> Iterator[dict[str, Any]]:
        """``ctx``: the request id an export with hashes is audited under."""
        response = self.conn.request(
            "GET",
            f"{API}/users/export",
            params={
                "format": "jsonl",
                "include_deleted": include_deleted or None,
                "include_password_hash": include_password_hash or None,
            },
            stream=True,
            request_id=_rid(ctx),
        )
        return (json.loads(line) for line in self.conn.lines(response) if line.strip())


class RemoteMail(_Port):
    # The mail types live with the mail service (they import the database layer): a
    # remote mail command pays that import, a listing of users does not.

    def list(self, actor: Actor, status: str | None = None, limit: int = 100) -> Any:
        from usermgmt.core.mail.delivery import MailList, MailOut

        out: list[MailOut] = []
        cursor = None
        while len(out) < limit:
            params = {"status": status, "limit": min(limit - len(out), 100), "cursor": cursor}
            body = self.conn.json("GET", f"{API}/mail", params=params)
            out += [MailOut.model_validate(m) for m in body["data"]]
            cursor = (body.get("meta") or {}).get("next_cursor")
            if not cursor or not body["data"]:
                break
        # (``meta`` for a MailList that has it: the remote-mode API branch adds it.)
        return MailList.model_validate(
            {"data": out[:limit], "meta": {"limit": limit, "next_cursor": None}}
        )

    def retry(self, actor: Actor, ctx: RequestContext, message_id: str) -> Any:
        from usermgmt.core.mail.delivery import MailOut

        if not _is_uuid(message_id):
            raise NotFound("Message not found")
        body = self.conn.json("POST", f"{API}/mail/{message_id}/retry", request_id=_rid(ctx))
        return MailOut.model_validate(body)

    def deliver_pending(self, *, limit: int | None = None) -> Any:
        from usermgmt.core.mail.delivery import DeliveryReport

        params = {"limit": limit} if limit is not None else None
        body = self.conn.json("POST", f"{API}/mail/deliver", params=params)
        return DeliveryReport(
            sent=int(body.get("sent", 0)),
            failed=int(body.get("failed", 0)),
            retried=int(body.get("retried", 0)),
        )


class RemoteHealth(_Port):
    def ping(self) -> None:
        self.conn.json("GET", f"{API}/auth/me")


class RemoteApiKeys(_Port):
    def create(self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]) -> ApiKeyCreated:
        from usermgmt.core.key_schemas import ApiKeyCreated

        body = self.conn.json("POST", f"{API}/api-keys", json=dict(data), request_id=_rid(ctx))
        return ApiKeyCreated.model_validate(body)

    def list(self, actor: Actor, query: Mapping[str, Any] | None = None) -> ApiKeyList:
        from usermgmt.core.key_schemas import ApiKeyList

        params = {
            k: ("true" if v is True else v) for k, v in _query(query).items() if v is not False
        }
        return ApiKeyList.model_validate(self.conn.json("GET", f"{API}/api-keys", params=params))

    def revoke(self, actor: Actor, ctx: RequestContext, key_id: str) -> bool:
        # The API answers 204 whether or not the key was still live (revoking is
        # idempotent), so remotely a second revoke also reads "Revoked".
        if not _is_uuid(key_id):
            raise NotFound("API key not found")
        self.conn.json("DELETE", f"{API}/api-keys/{key_id}", request_id=_rid(ctx))
        return True


class RemoteMfa(_Port):
    def setup(self, actor: Actor, ctx: RequestContext) -> TotpSetup:
        from usermgmt.core.mfa_schemas import TotpSetup

        body = self.conn.json("POST", f"{API}/auth/mfa/totp/setup", request_id=_rid(ctx))
        return TotpSetup.model_validate(body)

    def confirm(self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]) -> RecoveryCodes:
        return self._codes(ctx, "/auth/mfa/totp/confirm", data)

    def disable(self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]) -> None:
        self.conn.json("DELETE", f"{API}/auth/mfa/totp", json=dict(data), request_id=_rid(ctx))

    def regenerate_recovery_codes(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]
    ) -> RecoveryCodes:
        return self._codes(ctx, "/auth/mfa/recovery-codes", data)

    def _codes(self, ctx: RequestContext, path: str, data: Mapping[str, Any]) -> RecoveryCodes:
        from usermgmt.core.mfa_schemas import RecoveryCodes

        body = self.conn.json("POST", f"{API}{path}", json=dict(data), request_id=_rid(ctx))
        return RecoveryCodes.model_validate(body)

    def status(self, actor: Actor, user_id: str) -> MfaStatus:
        if not _is_uuid(user_id):
            raise NotFound("User not found")
        from usermgmt.core.mfa_schemas import MfaStatus

        return MfaStatus.model_validate(self.conn.json("GET", f"{API}/users/{user_id}/mfa"))

    def reset(self, actor: Actor, ctx: RequestContext, user_id: str) -> None:
        if not _is_uuid(user_id):
            raise NotFound("User not found")
        self.conn.json("DELETE", f"{API}/users/{user_id}/mfa", request_id=_rid(ctx))


class RemoteWebhooks(_Port):
    # The webhook types live with the webhooks service (it imports the database
    # layer): a remote webhook command pays that import, other commands do not.

    def _id(self, value: str, what: str = "Webhook") -> str:
        if not _is_uuid(value):
            raise NotFound(f"{what} not found")
        return value

    def create(self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]) -> Any:
        from usermgmt.core.webhooks.service import WebhookCreated

        body = self.conn.json("POST", f"{API}/webhooks", json=dict(data), request_id=_rid(ctx))
        return WebhookCreated.model_validate(body)

    def list(self, actor: Actor) -> Any:
        from usermgmt.core.webhooks.service import WebhookList

        return WebhookList.model_validate(self.conn.json("GET", f"{API}/webhooks"))

    def get(self, actor: Actor, webhook_id: str) -> Any:
        from usermgmt.core.webhooks.service import WebhookOut

        body = self.conn.json("GET", f"{API}/webhooks/{self._id(webhook_id)}")
        return WebhookOut.model_validate(body)

    def update(
        self, actor: Actor, ctx: RequestContext, webhook_id: str, data: Mapping[str, Any]
    ) -> Any:
        from usermgmt.core.webhooks.service import WebhookOut

        path = f"{API}/webhooks/{self._id(webhook_id)}"
        body = self.conn.json("PATCH", path, json=dict(data), request_id=_rid(ctx))
        return WebhookOut.model_validate(body)

    def delete(self, actor: Actor, ctx: RequestContext, webhook_id: str) -> None:
        path = f"{API}/webhooks/{self._id(webhook_id)}"
        self.conn.json("DELETE", path, request_id=_rid(ctx))

    def test(self, actor: Actor, ctx: RequestContext, webhook_id: str) -> Any:
        from usermgmt.core.webhooks.service import DeliveryOut

        path = f"{API}/webhooks/{self._id(webhook_id)}/test"
        return DeliveryOut.model_validate(self.conn.json("POST", path, request_id=_rid(ctx)))

    def deliveries(
        self,
        actor: Actor,
        webhook_id: str,
        *,
        status: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Any:
        from usermgmt.core.webhooks.service import DeliveryPage

        params = _query({"status": status, "limit": limit, "cursor": cursor})
        path = f"{API}/webhooks/{self._id(webhook_id)}/deliveries"
        return DeliveryPage.model_validate(self.conn.json("GET", path, params=params))

    def retry(self, actor: Actor, ctx: RequestContext, delivery_id: str) -> Any:
        from usermgmt.core.webhooks.service import DeliveryOut

        path = f"{API}/webhook-deliveries/{self._id(delivery_id, 'Webhook delivery')}/retry"
        return DeliveryOut.model_validate(self.conn.json("POST", path, request_id=_rid(ctx)))

    def replay(
        self, actor: Actor, ctx: RequestContext, webhook_id: str, data: Mapping[str, Any]
    ) -> Any:
        from usermgmt.core.webhooks.service import ReplayOut

        path = f"{API}/webhooks/{self._id(webhook_id)}/replay"
        body = self.conn.json("POST", path, json=dict(data), request_id=_rid(ctx))
        return ReplayOut.model_validate(body)


class RemoteBackend:
    """Every port over one connection. ``info()`` is what `usermgmt info` shows remotely."""

    def __init__(self, conn: Connection, context_name: str | None = None) -> None:
        self.conn = conn
        self.context_name = context_name
        self.users = RemoteUsers(conn)
        self.user_reads = RemoteUserReads(conn)
        self.roles = RemoteRoles(conn)
        self.sessions = RemoteSessions(conn)
        self.audit = RemoteAudit(conn)
        self.maintenance = RemoteMaintenance(conn)
        self.transfer = RemoteTransfer(conn)
        self.mail = RemoteMail(conn)
        self.health = RemoteHealth(conn)
        self.api_keys = RemoteApiKeys(conn)
        self.mfa = RemoteMfa(conn)
        self.webhooks = RemoteWebhooks(conn)
        self.clock = SYSTEM_CLOCK
        self.ids = RandomIds()

    @property
    def server(self) -> str:
        return self.conn.server

    def where(self) -> str:
        creds = self.conn.credentials
        if creds is None or not creds.who:
            return self.server
        return f"{self.server} {creds.as_whom.removeprefix('logged in ')}"

    def info(self) -> dict[str, Any]:
        return self.conn.json("GET", f"{API}/info")

    def me(self) -> UserOut:
        return _user(self.conn.json("GET", f"{API}/auth/me"))

    def login_again(self) -> ContextLogin:
        """A new sign-in to this backend's context (its session was refused), whose
        tokens this backend then uses."""
        from usermgmt.client.login import ContextLogin

        if self.context_name is None:
            raise ValidationError("USERMGMT_TOKEN names no account to sign in as")
        return ContextLogin(self.context_name, getattr(self.conn.credentials, "store", None))

    def enrolment_required(self) -> bool:
        """Whether the server's role policy holds this session back until a second factor
        is enrolled (NotLoggedIn when the session is refused altogether)."""
        try:
            self.conn.json("GET", f"{API}/info")
        except PermissionDenied as exc:
            if exc.details.get("mfa_enrolment_required"):
                return True
            raise
        return False

    def close(self) -> None:
        self.conn.close()
