"""Which backend a face gets: the one decision, read from the options and environment.

In order:

1. ``--context NAME`` or ``USERMGMT_CONTEXT``: that context of the contexts file;
2. ``USERMGMT_SERVER`` + ``USERMGMT_TOKEN``: that server with that bearer token
   (an API key), no file at all;
3. ``--database-url`` or ``USERMGMT_DATABASE_URL``: embedded, on that database;
4. the current context of the contexts file (``usermgmt login`` / ``context use``);
5. embedded, on the default SQLite file.

A remote target is returned without importing the core's database layer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from usermgmt.core.errors import ValidationError

ENV_CONTEXT = "USERMGMT_CONTEXT"
ENV_SERVER = "USERMGMT_SERVER"
ENV_TOKEN = "USERMGMT_TOKEN"
ENV_CA_BUNDLE = "USERMGMT_CA_BUNDLE"
ENV_INSECURE = "USERMGMT_INSECURE"
ENV_ALLOW_HTTP = "USERMGMT_ALLOW_HTTP"
ENV_DATABASE_URL = "USERMGMT_DATABASE_URL"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class RemoteTarget:
    """Where a remote backend connects; ``context`` is None for USERMGMT_SERVER + TOKEN."""

    server: str
    context: str | None


def choose(context: str | None, database_url: str | None) -> RemoteTarget | None:
    """The remote target the options and environment name, or None for embedded."""
    from usermgmt.client.contexts import ContextStore, check_name

    context = context or os.environ.get(ENV_CONTEXT) or None
    if context and database_url:
        raise ValidationError("--context and --database-url cannot be used together")
    if context:
        name, ctx = ContextStore().get(check_name(context))
        return RemoteTarget(ctx.server, name)
    server = os.environ.get(ENV_SERVER)
    if server:
        if not os.environ.get(ENV_TOKEN):
            raise ValidationError(f"{ENV_SERVER} is set but {ENV_TOKEN} is not")
        return RemoteTarget(server, None)
    if database_url or os.environ.get(ENV_DATABASE_URL):
        return None
    store = ContextStore()
    current = store.current_name()
    if current:
        name, ctx = store.get(current)
        return RemoteTarget(ctx.server, name)
    return None


def connect(target: RemoteTarget):
    """A :class:`RemoteBackend` for ``target`` (TLS and http rules applied)."""
    from usermgmt.client.backend import RemoteBackend
    from usermgmt.client.contexts import ContextStore
    from usermgmt.client.session import (
        Connection,
        ContextCredentials,
        TokenCredentials,
        normalise_server,
        warn_insecure,
    )

    if target.context is None:
        server = normalise_server(target.server, allow_http=_flag(ENV_ALLOW_HTTP))
        creds = TokenCredentials(os.environ[ENV_TOKEN])
        insecure = _flag(ENV_INSECURE)
        ca_bundle = os.environ.get(ENV_CA_BUNDLE) or None
    else:
        store = ContextStore()
        name, ctx = store.get(target.context)
        server = normalise_server(ctx.server, allow_http=ctx.allow_http)
        creds = ContextCredentials(store, name, ctx)
        insecure, ca_bundle = ctx.insecure, ctx.ca_bundle
    verify: bool | str = ca_bundle or True
    if insecure and server.startswith("https://"):
        warn_insecure(server)
        verify = False
    return RemoteBackend(Connection(server, creds, verify=verify), target.context)
