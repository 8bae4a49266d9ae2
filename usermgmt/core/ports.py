"""The seam between the faces and what does the work: typed ports, two backends.

The CLI and the console call these operations and nothing else. Two backends
implement them:

- embedded: :class:`usermgmt.core.services.Services` itself (in-process, over
  the database), whose services satisfy these protocols as they are;
- remote: :class:`usermgmt.client.RemoteBackend`, over the REST API with httpx,
  acting as the person logged in.

Every operation takes the caller's ``Actor`` and ``RequestContext`` the way the
services do. The embedded backend checks permissions against that actor; a
remote backend acts as the principal its credentials name (the server checks
them against the permission matrix) and sends the context's request id, so the
audit log ties the change to the call.

Errors are the domain errors of ``usermgmt.core.errors`` in both backends, so
each face's one error table serves both. This module and the types it names
import neither SQLAlchemy nor the ORM models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from usermgmt.core.clock import Clock
    from usermgmt.core.context import Actor, RequestContext
    from usermgmt.core.ids import IdSource
    from usermgmt.core.key_schemas import ApiKeyCreated, ApiKeyList
    from usermgmt.core.mail.delivery import DeliveryReport, MailList, MailOut
    from usermgmt.core.mfa_schemas import MfaStatus, RecoveryCodes, TotpSetup
    from usermgmt.core.results import (
        BulkAction,
        BulkOutcome,
        ChainHead,
        ChainReport,
        ImportReport,
        PurgeReport,
        RowError,
    )
    from usermgmt.core.schemas import (
        AuditPage,
        RoleOut,
        SessionOut,
        UserOut,
        UserPage,
        UserRows,
    )
    from usermgmt.core.webhooks.service import (
        DeliveryOut,
        DeliveryPage,
        ReplayOut,
        WebhookCreated,
        WebhookList,
        WebhookOut,
    )

Query = Mapping[str, Any] | None
EnsureOutcome = Literal["created", "updated", "unchanged"]
OnConflict = Literal["fail", "skip", "update"]


class UserReadsPort(Protocol):
    def get(self, actor: Actor, user_id: str, *, include_deleted: bool = False) -> UserOut: ...

    def find(self, actor: Actor, ref: str, *, include_deleted: bool = False) -> UserOut:
        """The user a UUID, email or username names (NotFound, or ValidationError if
        ambiguous)."""
        ...

    def resolve_id(self, actor: Actor, ref: str, *, include_deleted: bool = True) -> str: ...

    def list(self, actor: Actor, query: Query = None) -> UserPage: ...

    def list_rows(
        self, actor: Actor, query: Query = None, *, total: int | None = None, skip: int = 0
    ) -> UserRows: ...

    def count(self, actor: Actor, query: Query = None) -> int: ...

    def stream(self, actor: Actor, query: Query = None) -> Iterator[UserOut]:
        """Every user matching ``query`` from its cursor on, in flat memory."""
        ...


class UsersPort(Protocol):
    def create(self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]) -> UserOut: ...

    def ensure(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]
    ) -> tuple[EnsureOutcome, UserOut]: ...

    def update(
        self, actor: Actor, ctx: RequestContext, user_id: str, data: Mapping[str, Any]
    ) -> UserOut: ...

    def delete(self, actor: Actor, ctx: RequestContext, user_id: str) -> None: ...

    def restore(self, actor: Actor, ctx: RequestContext, user_id: str) -> UserOut: ...

    def lock(
        self, actor: Actor, ctx: RequestContext, user_id: str, minutes: int | None = None
    ) -> UserOut: ...

    def unlock(self, actor: Actor, ctx: RequestContext, user_id: str) -> UserOut: ...

    def set_password(
        self, actor: Actor, ctx: RequestContext, user_id: str, password: str
    ) -> None: ...

    def send_reset_link(self, actor: Actor, ctx: RequestContext, user_id: str) -> None: ...

    def bulk(
        self,
        actor: Actor,
        ctx: RequestContext,
        action: BulkAction,
        user_ids: Sequence[str],
        *,
        minutes: int | None = None,
    ) -> BulkOutcome:
        """lock, unlock, delete, restore or sign_out many users; a user that cannot be
        changed (not found, conflict) is counted in ``failed``, not raised."""
        ...


class RolesPort(Protocol):
    def list(self, actor: Actor) -> list[RoleOut]: ...

    def grant(self, actor: Actor, ctx: RequestContext, user_id: str, role: str) -> UserOut: ...

    def revoke(self, actor: Actor, ctx: RequestContext, user_id: str, role: str) -> UserOut: ...

    def set(self, actor: Actor, ctx: RequestContext, user_id: str, roles: Any) -> UserOut:
        """Replace the user's roles with ``roles`` (``{"roles": [...]}`` or a list)."""
        ...


class SessionsPort(Protocol):
    def list(self, actor: Actor, user_id: str) -> list[SessionOut]: ...

    def revoke_all(self, actor: Actor, ctx: RequestContext, user_id: str) -> int: ...

    def revoke(self, actor: Actor, ctx: RequestContext, session_id: str) -> None: ...


class AuditPort(Protocol):
    def query(self, actor: Actor, query: Query = None) -> AuditPage: ...

    def verify(
        self,
        actor: Actor,
        expect_head: str | ChainHead | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> ChainReport:
        """``progress(checked, total)`` as events are checked, where the check runs here;
        through a server it is one request, and ``progress`` is not called."""
        ...

    def head(self) -> ChainHead: ...


class MaintenancePort(Protocol):
    def purge(
        self,
        actor: Actor,
        ctx: RequestContext,
        *,
        dry_run: bool = False,
        progress: Callable[[str, int], None] | None = None,
    ) -> PurgeReport: ...


class TransferPort(Protocol):
    def import_users(
        self,
        actor: Actor,
        ctx: RequestContext,
        rows: Iterable[tuple[int, dict[str, Any] | RowError]],
        *,
        on_conflict: OnConflict = "fail",
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
        max_errors: int | None = ...,
    ) -> ImportReport:
        """``(line, record)`` pairs as the CLI's readers yield them; all or nothing
        with ``on_conflict="fail"``."""
        ...

    def export_users(
        self,
        actor: Actor,
        *,
        include_deleted: bool = False,
        include_password_hash: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """One flat record per user, oldest first, in flat memory."""
        ...


class MailPort(Protocol):
    def list(self, actor: Actor, status: str | None = None, limit: int = 100) -> MailList: ...

    def retry(self, actor: Actor, ctx: RequestContext, message_id: str) -> MailOut: ...

    def deliver_pending(self, *, limit: int | None = None) -> DeliveryReport: ...


class HealthPort(Protocol):
    def ping(self) -> None:
        """Raise ServiceUnavailable unless the backend answers."""
        ...


class ApiKeysPort(Protocol):
    def create(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]
    ) -> ApiKeyCreated: ...

    def list(self, actor: Actor, query: Query = None) -> ApiKeyList: ...

    def revoke(self, actor: Actor, ctx: RequestContext, key_id: str) -> bool:
        """False when the key already was revoked."""
        ...


class MfaPort(Protocol):
    # The caller's own second factor (a signed-in person; an operator has no account).
    def setup(self, actor: Actor, ctx: RequestContext) -> TotpSetup:
        """A new secret, its otpauth URI and QR code; inactive until confirmed."""
        ...

    def confirm(self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]) -> RecoveryCodes:
        """Activate the secret with ``{"code"}`` from the app; the ten recovery codes."""
        ...

    def disable(self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]) -> None:
        """Turn it off with ``{"password", "code"}``."""
        ...

    def regenerate_recovery_codes(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]
    ) -> RecoveryCodes:
        """Ten new recovery codes for ``{"code"}``; the old ones stop working."""
        ...

    # Administration.
    def status(self, actor: Actor, user_id: str) -> MfaStatus: ...

    def reset(self, actor: Actor, ctx: RequestContext, user_id: str) -> None:
        """Remove the user's second factor and end the user's sessions (admin)."""
        ...


class WebhooksPort(Protocol):
    """Subscriptions and their deliveries (admin). Sending is the server's (or a cron
    ``usermgmt webhooks deliver`` on the database), so it is not a port operation."""

    def create(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any]
    ) -> WebhookCreated: ...

    def list(self, actor: Actor) -> WebhookList: ...

    def get(self, actor: Actor, webhook_id: str) -> WebhookOut: ...

    def update(
        self, actor: Actor, ctx: RequestContext, webhook_id: str, data: Mapping[str, Any]
    ) -> WebhookOut: ...

    def delete(self, actor: Actor, ctx: RequestContext, webhook_id: str) -> None: ...

    def test(self, actor: Actor, ctx: RequestContext, webhook_id: str) -> DeliveryOut: ...

    def deliveries(
        self,
        actor: Actor,
        webhook_id: str,
        *,
        status: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> DeliveryPage: ...

    def retry(self, actor: Actor, ctx: RequestContext, delivery_id: str) -> DeliveryOut: ...

    def replay(
        self, actor: Actor, ctx: RequestContext, webhook_id: str, data: Mapping[str, Any]
    ) -> ReplayOut: ...


class Backend(Protocol):
    """Everything a face may call. ``Services`` is the embedded one."""

    users: UsersPort
    user_reads: UserReadsPort
    roles: RolesPort
    sessions: SessionsPort
    audit: AuditPort
    maintenance: MaintenancePort
    transfer: TransferPort
    mail: MailPort
    health: HealthPort
    api_keys: ApiKeysPort
    mfa: MfaPort
    webhooks: WebhooksPort
    # What a face stamps its own work with (the console's "now", request ids):
    # the core's injected sources, or this machine's for a remote backend.
    clock: Clock
    ids: IdSource

    def close(self) -> None: ...

    def where(self) -> str:
        """Where the work is done, for a person: the database (password masked) or
        the server and who is logged in to it."""
        ...
