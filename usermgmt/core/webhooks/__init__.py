"""Webhooks: every change to a user, from every face, delivered to apps after commit.

- ``events``: which audit actions become which event types; the rows written in
  the change's own transaction (called by ``usermgmt.core.audit``, the one place
  every change passes through).
- ``signing``: Standard Webhooks signatures; the secret encrypted at rest.
- ``targets``: which URLs may be called (no private addresses unless allowed).
- ``delivery``: claims with a lease, POSTs, backoff, dead letter, disabling.
- ``service``: what admins do with subscriptions and deliveries.
"""
