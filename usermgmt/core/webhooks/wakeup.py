"""Wakes this process's webhook deliverer when a transaction that queued deliveries
commits (usermgmt.core.background.CommitSignal)."""

from __future__ import annotations

from usermgmt.core.background import CommitSignal

queued = CommitSignal("usermgmt_webhooks_queued")
add_listener = queued.add_listener
remove_listener = queued.remove_listener
after_commit = queued.after_commit
