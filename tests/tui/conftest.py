"""Fixtures for the console's tests: an app over the real core (both databases)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from usermgmt.core.context import Actor
from usermgmt.tui.app import UserMgmtApp


@pytest.fixture
def tui_actor() -> Actor:
    """The actor the app under test acts as (os user 'tester')."""
    return Actor.operator("tui", "tester")


@pytest.fixture
def make_app(services) -> Callable[..., UserMgmtApp]:
    def make(svc=None, **kwargs) -> UserMgmtApp:
        kwargs.setdefault("os_user", "tester")
        kwargs.setdefault("retry_delays", (0.05,))
        kwargs.setdefault("search_debounce", 0.01)
        return UserMgmtApp(svc or services, **kwargs)

    return make


@pytest.fixture
def ui_services(sqlite_template, tmp_path):
    """Services on SQLite only, for tests of the console itself (keys, help, palette, bugs)
    rather than of database behaviour, which run on both databases."""
    import shutil

    from usermgmt.core.config import load_settings
    from usermgmt.core.services import build_services

    path = tmp_path / "ui.db"
    shutil.copy(sqlite_template, path)
    services = build_services(load_settings(database_url=f"sqlite:///{path}"))
    yield services
    services.close()


@pytest.fixture
def make_ui_app(ui_services) -> Callable[..., UserMgmtApp]:
    def make(**kwargs) -> UserMgmtApp:
        kwargs.setdefault("os_user", "tester")
        kwargs.setdefault("search_debounce", 0.01)
        return UserMgmtApp(ui_services, **kwargs)

    return make
