"""UsersPort.bulk through a served API: one call per user (there is no bulk endpoint),
failures counted per user as embedded, each change audited with the one request id."""

from __future__ import annotations

import uuid

from usermgmt.client.factory import RemoteTarget, connect
from usermgmt.core.context import Actor, RequestContext

from .conftest import unique_email


def test_bulk_through_the_server_counts_failures_like_embedded(as_admin, served):
    svc = served.services()
    operator, seed_ctx = Actor.operator("cli", "tester"), RequestContext(request_id="seed")
    try:
        users = [
            svc.users.create(operator, seed_ctx, {"email": unique_email("bulk")}) for _ in range(2)
        ]
        ids = [str(u.id) for u in users]
        missing = str(uuid.uuid4())
        backend = connect(RemoteTarget(served.url, "admin"))
        ctx = RequestContext(request_id=f"tui-bulk-{uuid.uuid4().hex[:8]}")
        try:
            locked = backend.users.bulk(operator, ctx, "lock", [*ids, missing], minutes=5)
            restored = backend.users.bulk(operator, ctx, "restore", ids[:1])
            signed_out = backend.users.bulk(operator, ctx, "sign_out", ids)
        finally:
            backend.close()
        assert locked.done == ids
        assert [(f.user_id, f.code) for f in locked.failed] == [(missing, "NOT_FOUND")]
        assert restored.done == [] and restored.failed[0].code == "CONFLICT"
        assert signed_out.done == ids
        for user_id in ids:
            assert svc.user_reads.get(operator, user_id).locked_until is not None
            events = svc.audit.query(operator, {"target_id": user_id}).data
            assert [e.action for e in events[:2]] == ["session.revoked", "user.locked"]
            assert {e.request_id for e in events[:2]} == {ctx.request_id}
    finally:
        svc.close()
