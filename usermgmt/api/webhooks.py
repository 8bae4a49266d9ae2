"""REST resources of the webhooks (admin): subscriptions, their deliveries, retries, replays."""

from __future__ import annotations

from typing import Annotated, Literal

import falcon
from pydantic import Field

from usermgmt.api.jsonio import write_model
from usermgmt.api.operations import operation
from usermgmt.api.resources import API, Resource
from usermgmt.core.schemas import WriteModel, query_int
from usermgmt.core.webhooks.service import (
    DeliveryOut,
    DeliveryPage,
    ReplayIn,
    ReplayOut,
    WebhookCreated,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookPatch,
)

URL_REFUSED = (
    (
        400,
        "a URL with credentials or a bad port, that does not resolve, or that resolves to a "
        "non-public address while USERMGMT_WEBHOOK_ALLOW_PRIVATE is unset",
    ),
)
EVENTS_DOC = (
    "`events`: event types (user.created, user.updated, user.deleted, user.restored, "
    "user.locked, user.unlocked, user.roles_changed, user.password_changed, "
    'user.email_verified, user.mfa_changed, session.revoked) or `["*"]` for all. '
    "The URL must be http(s) and, unless USERMGMT_WEBHOOK_ALLOW_PRIVATE is set, resolve "
    "to public addresses only."
)


class DeliveryQuery(WriteModel):
    status: Literal["pending", "delivered", "failed"] | None = None
    limit: query_int(1, 1000) = 100
    cursor: Annotated[str, Field(pattern=r"^[0-9]{1,18}$")] | None = None


class WebhooksResource(Resource):
    @operation(summary="List webhook subscriptions (admin)", tag="webhooks", response=WebhookList,
               errors=(403,), description="Secrets are never listed.")  # fmt: skip
    def on_get(self, req, resp):
        write_model(resp, self.services.webhooks.list(req.context.actor))

    @operation(
        summary="Subscribe a URL to events (admin)",
        tag="webhooks",
        success=201,
        response=WebhookCreated,
        body=WebhookIn,
        errors=(403,),
        refusals=URL_REFUSED,
        description=EVENTS_DOC + " The signing secret is in this response only.",
        success_headers=("Location",),
    )
    def on_post(self, req, resp):
        c = req.context
        created = self.services.webhooks.create(c.actor, c.request_context, c.body)
        resp.location = f"{API}/webhooks/{created.webhook.id}"
        _no_store(resp)
        write_model(resp, created, 201)


def _no_store(resp: falcon.Response) -> None:
    resp.set_header("Cache-Control", "no-store")


class WebhookResource(Resource):
    @operation(summary="Get a webhook subscription (admin)", tag="webhooks",
               response=WebhookOut, errors=(403, 404))  # fmt: skip
    def on_get(self, req, resp, webhook_id: str):
        write_model(resp, self.services.webhooks.get(req.context.actor, webhook_id))

    @operation(
        summary="Change a webhook subscription (admin)",
        tag="webhooks",
        response=WebhookOut,
        body=WebhookPatch,
        errors=(403, 404),
        refusals=URL_REFUSED,
        description="`enabled: false` pauses it (pending deliveries wait); `enabled: true` "
        "resumes it. " + EVENTS_DOC,
    )
    def on_patch(self, req, resp, webhook_id: str):
        c = req.context
        write_model(
            resp, self.services.webhooks.update(c.actor, c.request_context, webhook_id, c.body)
        )

    @operation(summary="Delete a webhook subscription and its deliveries (admin)",
               tag="webhooks", success=204, errors=(403, 404))  # fmt: skip
    def on_delete(self, req, resp, webhook_id: str):
        c = req.context
        self.services.webhooks.delete(c.actor, c.request_context, webhook_id)
        resp.status = falcon.HTTP_204


class WebhookDeliveriesResource(Resource):
    @operation(
        summary="List a subscription's deliveries, newest first (admin)",
        tag="webhooks",
        response=DeliveryPage,
        query=DeliveryQuery,
        errors=(403, 404),
        description="Status, attempts, last response code and latency of each; `cursor` "
        "comes from meta.next_cursor.",
    )
    def on_get(self, req, resp, webhook_id: str):
        c = req.context
        q = c.query
        page = self.services.webhooks.deliveries(
            c.actor, webhook_id, status=q.status, limit=q.limit, cursor=q.cursor
        )
        write_model(resp, page)


class WebhookTestResource(Resource):
    @operation(summary="Queue a webhook.test event for this subscription (admin)",
               tag="webhooks", success=202, response=DeliveryOut, errors=(403, 404, 409),
               description="409 when the subscription is disabled.")  # fmt: skip
    def on_post(self, req, resp, webhook_id: str):
        c = req.context
        write_model(resp, self.services.webhooks.test(c.actor, c.request_context, webhook_id), 202)


class WebhookReplayResource(Resource):
    @operation(
        summary="Send a subscription's events since a time again (admin)",
        tag="webhooks",
        success=202,
        response=ReplayOut,
        body=ReplayIn,
        errors=(403, 404, 409),
        description="Delivered and dead-lettered events created at or after `since` go back "
        "to the queue, in their order and with their webhook-id. 409 when disabled.",
    )
    def on_post(self, req, resp, webhook_id: str):
        c = req.context
        out = self.services.webhooks.replay(c.actor, c.request_context, webhook_id, c.body)
        write_model(resp, out, 202)


class WebhookDeliveryRetryResource(Resource):
    @operation(summary="Send one delivery again with fresh attempts (admin)",
               tag="webhooks", success=202, response=DeliveryOut, errors=(403, 404))  # fmt: skip
    def on_post(self, req, resp, delivery_id: str):
        c = req.context
        write_model(
            resp, self.services.webhooks.retry(c.actor, c.request_context, delivery_id), 202
        )


def webhook_routes(make) -> list[tuple[str, object]]:
    return [
        (f"{API}/webhooks", make(WebhooksResource)),
        (f"{API}/webhooks/{{webhook_id}}", make(WebhookResource)),
        (f"{API}/webhooks/{{webhook_id}}/deliveries", make(WebhookDeliveriesResource)),
        (f"{API}/webhooks/{{webhook_id}}/test", make(WebhookTestResource)),
        (f"{API}/webhooks/{{webhook_id}}/replay", make(WebhookReplayResource)),
        (f"{API}/webhook-deliveries/{{delivery_id}}/retry", make(WebhookDeliveryRetryResource)),
    ]
