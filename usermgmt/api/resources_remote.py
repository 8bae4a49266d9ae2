"""What the CLI and the console need to work against a served API (remote mode).

Each responder is one core call whose answer lets a remote CLI print what the
embedded CLI prints for the same command, with the same exit code. As in
resources.py, permissions are the core's: these are admin operations, except
``/info`` (any signed-in caller) and ``/users/resolve`` (whoever may read users).

Two bodies are not JSON: ``POST /users/import`` reads the uploaded file as a
stream (its own size limit, ``USERMGMT_MAX_IMPORT_BYTES``), and
``GET /users/export`` streams its answer in the chosen format.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import falcon

from usermgmt import __version__
from usermgmt.api.errors import ApiError
from usermgmt.api.jsonio import too_large, write_model
from usermgmt.api.operations import operation
from usermgmt.api.remote_schemas import (
    AuditHeadOut,
    DeliverOut,
    DeliverQuery,
    EnsureOut,
    ExportQuery,
    ImportQuery,
    ImportReportOut,
    InfoOut,
    MailQuery,
    PurgeOut,
    PurgeQuery,
    ResolveQuery,
    RowErrorOut,
    SetPasswordIn,
    VerifyIn,
    VerifyOut,
)
from usermgmt.api.resources import PASSWORD_POLICY, Resource
from usermgmt.core.formats import (
    Source,
    read_csv,
    read_json_array,
    read_jsonl,
    sniff_format,
    write_chunks,
)
from usermgmt.core.mail.delivery import MailList, MailOut
from usermgmt.core.schemas import UserCreate, UserOut, parse
from usermgmt.core.services.transfer import EXPORT_FIELDS, EXPORT_ONLY, ImportRow

# The media types of an import upload, and the format each one names (None: the
# format comes from the query, else from the file's first character).
UPLOAD_MEDIA: dict[str, str | None] = {
    "text/csv": "csv",
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "text/plain": None,
    "application/octet-stream": None,
}
EXPORT_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
}
EXPORT_SCHEMAS = {
    "csv": {"type": "string"},
    "json": {"type": "array", "items": {"type": "object"}},
    "jsonl": {"type": "string"},
}
# The export is sent in pieces of about this many bytes (a piece per record
# would cost a write per user; the whole export would cost memory).
EXPORT_CHUNK_BYTES = 64 * 1024
UNREADABLE_FILE = (
    "the file cannot be read as a whole (not UTF-8; a CSV header with unknown or "
    "repeated columns or no email; a JSON document that is not an array of objects); "
    "the message names the line. Bad rows are not refusals: they are in the report"
)


class InfoResource(Resource):
    @operation(
        summary="The server's version, database and schema revision, and who you are",
        tag="operations",
        response=InfoOut,
        errors=(404,),
        description="For any signed-in caller: what `usermgmt info` shows in remote mode.",
    )
    def on_get(self, req, resp):
        c = req.context
        me = self.services.auth.me(c.actor)
        write_model(
            resp,
            InfoOut(
                version=__version__,
                schema_revision=self.services.migrations.state().current,
                database=self.services.runtime.options.backend,
                me=me,
            ),
        )


# ---- users -----------------------------------------------------------------------


class ResolveResource(Resource):
    @operation(
        summary="Find a user by UUID, email, username or id prefix",
        tag="users",
        response=UserOut,
        query=ResolveQuery,
        errors=(400, 403, 404),
        description="The rule of `usermgmt users show`: a UUID names the id, a reference "
        "with @ an email, anything else a username (both case-insensitive), else, for "
        "moderators and admins, the one id starting with it (8 or more hex digits; 400 "
        "naming candidates when several do). Moderators "
        "and admins find anyone; a user only themselves (403 for any other reference, "
        "whether or not it exists); include_deleted=true is for admins.",
    )
    def on_get(self, req, resp):
        c = req.context
        found = self.services.user_reads.find(
            c.actor, c.query.ref, include_deleted=c.query.include_deleted
        )
        write_model(resp, found)


class EnsureResource(Resource):
    @operation(
        summary="Make sure a user exists as described: create, update or leave it (admin)",
        tag="users",
        response=EnsureOut,
        body=UserCreate,
        errors=(403, 409),
        refusals=((400, f"password fails {PASSWORD_POLICY}"),),
        description="Only the fields given are compared; roles, when given, must match "
        "exactly; a given password is set only if it differs. A soft-deleted user with "
        "this email is restored. A new user without a password is invited. "
        "200 in all three cases, `result` says which.",
    )
    def on_post(self, req, resp):
        c = req.context
        result, user = self.services.users.ensure(c.actor, c.request_context, c.body)
        write_model(resp, EnsureOut(result=result, user=user))


class UserPasswordResource(Resource):
    @operation(
        summary="Set a user's password (admin); their sessions end and they are told",
        tag="users",
        success=204,
        body=SetPasswordIn,
        errors=(403, 404),
        refusals=((400, f"password fails {PASSWORD_POLICY}"),),
        description="What `usermgmt users set-password` does.",
    )
    def on_put(self, req, resp, user_id: str):
        c = req.context
        spec = parse(SetPasswordIn, c.body)
        self.services.users.set_password(c.actor, c.request_context, user_id, spec.password)
        resp.status = falcon.HTTP_204


class SessionResource(Resource):
    @operation(
        summary="Revoke one session (admin)",
        tag="users",
        success=204,
        errors=(403, 404),
        description="What `usermgmt sessions revoke ID` does; revoking a session that "
        "already ended changes nothing.",
    )
    def on_delete(self, req, resp, session_id: str):
        c = req.context
        self.services.sessions.revoke(c.actor, c.request_context, session_id)
        resp.status = falcon.HTTP_204


class _CappedStream:
    """A request body read in pieces that refuses to go past ``limit`` bytes (413)."""

    def __init__(self, stream, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.read_so_far = 0

    def read(self, size: int = -1) -> bytes:
        allowed = self.limit + 1 - self.read_so_far
        data = self.stream.read(allowed if size < 0 else min(size, allowed))
        self.read_so_far += len(data)
        if self.read_so_far > self.limit:
            raise too_large(self.limit)
        return data


def _media_type(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


class ImportResource(Resource):
    """The upload is read as the rows are checked: memory stays flat for any file.

    waitress has the whole body (spooled to a temporary file past 512 KiB) before
    the app is called, so the import's one transaction never waits on the network.
    """

    def __init__(self, services, limiter=None, metrics=None) -> None:
        super().__init__(services, limiter, metrics)
        self.max_upload_bytes = services.runtime.api_options.max_import_bytes

    @operation(
        summary="Import users from an uploaded CSV, JSON or JSON lines file (admin)",
        tag="users",
        response=ImportReportOut,
        query=ImportQuery,
        upload_media=tuple(UPLOAD_MEDIA),
        errors=(403,),
        refusals=((400, UNREADABLE_FILE),),
        description="The request body is the file, as `usermgmt users import` reads it "
        "(UTF-8, with or without a BOM). One transaction: with on_conflict=fail nothing "
        "is written if any row is bad or any email exists; skip and update write the "
        "good rows; a dry run or max_errors bad rows write nothing. 200 with the report "
        "whenever the file could be read, also when rows were bad: `committed` says "
        "whether anything was written, `errors` gives each bad row's line and reason. "
        "The body may be up to USERMGMT_MAX_IMPORT_BYTES (not the JSON body limit).",
    )
    def on_post(self, req, resp):
        c = req.context
        q = c.query
        media = _media_type(req.content_type)
        if media not in UPLOAD_MEDIA:
            raise ApiError(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                f"An import is uploaded as one of {', '.join(UPLOAD_MEDIA)}",
            )
        source = Source(
            _CappedStream(req.bounded_stream, self.max_upload_bytes), q.filename or "upload"
        )
        kind = q.format or UPLOAD_MEDIA[media] or sniff_format(source)
        if kind == "csv":
            rows = read_csv(source, set(ImportRow.model_fields) | EXPORT_ONLY)
        elif kind == "jsonl":
            rows = read_jsonl(source)
        else:
            rows = read_json_array(source)
        report = self.services.transfer.import_users(
            c.actor,
            c.request_context,
            rows,
            on_conflict=q.on_conflict,
            dry_run=q.dry_run,
            max_errors=q.max_errors or None,
        )
        write_model(
            resp,
            ImportReportOut(
                rows=report.rows,
                created=report.created,
                updated=report.updated,
                skipped=report.skipped,
                errors=[RowErrorOut(line=e.line, reason=e.reason) for e in report.errors],
                committed=report.committed,
                dry_run=report.dry_run,
                stopped_at_line=report.stopped_at_line,
                not_checked=report.not_checked,
            ),
        )


def _in_pieces(texts: Iterable[str], size: int) -> Iterator[bytes]:
    """UTF-8 of ``texts`` joined into pieces of at least ``size`` bytes (the last may be less)."""
    pending: list[bytes] = []
    length = 0
    for text in texts:
        data = text.encode("utf-8")
        pending.append(data)
        length += len(data)
        if length >= size:
            yield b"".join(pending)
            pending.clear()
            length = 0
    if pending:
        yield b"".join(pending)


class ExportResource(Resource):
    @operation(
        summary="Export users, oldest first, streamed (admin)",
        tag="users",
        query=ExportQuery,
        response_media=tuple((EXPORT_MEDIA[f], EXPORT_SCHEMAS[f]) for f in EXPORT_MEDIA),
        errors=(403,),
        description="The bytes `usermgmt users export --format F` writes: what an import "
        "reads back (id, created_at, last_login_at and deleted_at are read and ignored). "
        "Sent in pieces as the users are read, in constant memory. With "
        "include_password_hash=true each bcrypt hash is added (password_hash) and the "
        "export is audited (users.exported). A failure midway ends the response without "
        "its last chunk, so a client sees a broken transfer, never a short file.",
    )
    def on_get(self, req, resp):
        c = req.context
        q = c.query
        # A HEAD sends no body: no hash leaves, so there is no export to audit.
        with_hashes = q.include_password_hash and req.method != "HEAD"
        records = self.services.transfer.export_users(
            c.actor,
            include_deleted=q.include_deleted,
            include_password_hash=with_hashes,
            ctx=c.request_context,
        )
        fields = EXPORT_FIELDS + (["password_hash"] if with_hashes else [])
        resp.content_type = EXPORT_MEDIA[q.format]
        resp.stream = _in_pieces(write_chunks(records, q.format, fields), EXPORT_CHUNK_BYTES)


# ---- audit, maintenance ------------------------------------------------------------


class AuditVerifyResource(Resource):
    @operation(
        summary="Check the audit log's hash chain (admin)",
        tag="audit",
        response=VerifyOut,
        body=VerifyIn,
        body_required=False,
        errors=(403,),
        refusals=((400, "expect_head is not SEQ:HASH"),),
        description="200 whether the chain holds or not: `ok` says which, and the "
        "first problem is named (bad_seq, bad_id, reason). Optional body "
        '{"expect_head": "SEQ:HASH"}: a head recorded earlier that must still be in '
        "the chain.",
    )
    def on_post(self, req, resp):
        c = req.context
        spec = parse(VerifyIn, c.body)
        report = self.services.audit.verify(c.actor, spec.expect_head)
        write_model(
            resp,
            VerifyOut(
                ok=report.ok,
                checked=report.checked,
                bad_seq=report.bad_seq,
                bad_id=str(report.bad_id) if report.bad_id else None,
                reason=report.reason,
                head=str(report.head) if report.head else None,
                users_without_creation=[str(u) for u in report.users_without_creation],
                users_without_creation_count=report.users_without_creation_count,
                description=report.describe(),
            ),
        )


class AuditHeadResource(Resource):
    @operation(
        summary="The audit chain's current head (admin)",
        tag="audit",
        response=AuditHeadOut,
        errors=(403,),
        description="Keep it where the database's operators cannot rewrite it; "
        "POST /audit/verify with it as expect_head fails if the chain was truncated "
        "or rewound past it.",
    )
    def on_get(self, req, resp):
        head = self.services.audit.current_head(req.context.actor)
        write_model(resp, AuditHeadOut(seq=head.seq, hash=head.hash, head=str(head)))


class PurgeResource(Resource):
    @operation(
        summary="Delete spent tokens, dead sessions and old sent mail (admin)",
        tag="operations",
        response=PurgeOut,
        query=PurgeQuery,
        errors=(403,),
        description="What `usermgmt tokens purge` does: in small batches; the counts per "
        "kind of what was (or, with dry_run=true, would be) deleted.",
    )
    def on_post(self, req, resp):
        c = req.context
        report = self.services.maintenance.purge(
            c.actor, c.request_context, dry_run=c.query.dry_run
        )
        write_model(
            resp, PurgeOut(dry_run=report.dry_run, counts=dict(report.counts), total=report.total)
        )


# ---- mail --------------------------------------------------------------------------


class MailListResource(Resource):
    @operation(
        summary="List outgoing mail, newest first (admin)",
        tag="mail",
        response=MailList,
        query=MailQuery,
        errors=(403,),
        refusals=((400, "a cursor that is not a meta.next_cursor of a mail listing"),),
        description="The fields `usermgmt mail list` shows; never a link or a token.",
    )
    def on_get(self, req, resp):
        c = req.context
        q = c.query
        write_model(
            resp, self.services.mail.list(c.actor, status=q.status, limit=q.limit, cursor=q.cursor)
        )


class MailRetryResource(Resource):
    @operation(
        summary="Queue a dead-lettered (or waiting) message again (admin)",
        tag="mail",
        response=MailOut,
        errors=(403, 404, 409),
        description="A dead letter goes back to pending with fresh attempts; a pending "
        "message waiting for its backoff becomes due now; 409 for a sent message.",
    )
    def on_post(self, req, resp, mail_id: str):
        c = req.context
        write_model(resp, self.services.mail.retry(c.actor, c.request_context, mail_id))


class MailDeliverResource(Resource):
    @operation(
        summary="Send the mail that is due now (admin)",
        tag="mail",
        response=DeliverOut,
        query=DeliverQuery,
        errors=(403,),
        description="What `usermgmt mail deliver` does; failed messages are retried later "
        "with backoff and counted here. A run that did anything is audited.",
    )
    def on_post(self, req, resp):
        c = req.context
        report = self.services.mail.deliver(c.actor, c.request_context, limit=c.query.limit)
        write_model(
            resp, DeliverOut(sent=report.sent, retried=report.retried, failed=report.failed)
        )
