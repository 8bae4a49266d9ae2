"""Account pages behind the links in mails (see resources.py and docs/pages.md)."""

from usermgmt.api.pages.resources import page_routes

__all__ = ["page_routes"]
