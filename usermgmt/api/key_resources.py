"""API keys: create (the secret is in this one answer), list, revoke."""

from __future__ import annotations

import falcon

from usermgmt.api.jsonio import write_model
from usermgmt.api.operations import operation
from usermgmt.api.resources import API, Resource
from usermgmt.core.key_schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyQuery


class ApiKeysResource(Resource):
    @operation(
        summary="Create an API key (the secret is shown this once)",
        tag="api-keys",
        success=201,
        response=ApiKeyCreated,
        body=ApiKeyCreate,
        errors=(403, 404, 409),
        description="A key for the caller, or (admins) for `user_id`. It acts with the "
        "intersection of its scopes and its owner's roles at the time of each request. "
        "Only a digest is kept: the `secret` cannot be shown again. A key may only make "
        "keys with scopes it has. 409 CONFLICT when the owner is deactivated.",
        success_headers=("Location",),
    )
    def on_post(self, req, resp):
        c = req.context
        created = self.services.api_keys.create(c.actor, c.request_context, c.body)
        resp.set_header("Cache-Control", "no-store")
        resp.location = f"{API}/api-keys/{created.key.id}"
        write_model(resp, created, 201)

    @operation(
        summary="List API keys",
        tag="api-keys",
        response=ApiKeyList,
        query=ApiKeyQuery,
        errors=(403, 404),
        description="The caller's own keys; admins may pass `user_id` or `all=true`. "
        "Revoked and expired keys are listed (see `state`) until `tokens purge` "
        "removes them after the retention period.",
    )
    def on_get(self, req, resp):
        c = req.context
        write_model(resp, self.services.api_keys.list(c.actor, c.query))


class ApiKeyResource(Resource):
    @operation(
        summary="Revoke an API key",
        tag="api-keys",
        success=204,
        errors=(403, 404),
        description="The key fails on the next request, on every server. Revoking a "
        "revoked key is a 204 too. Another user's key is a 404 unless the caller is an "
        "admin.",
    )
    def on_delete(self, req, resp, key_id: str):
        c = req.context
        self.services.api_keys.revoke(c.actor, c.request_context, key_id)
        resp.status = falcon.HTTP_204
