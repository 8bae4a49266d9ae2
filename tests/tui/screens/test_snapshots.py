"""SVG snapshots of the main screens (users, detail, form, audit), and of every screen and
dialog at the smallest size supported (80x24) and a large one (200x50).

Deterministic by construction: a fixed terminal size, the services built with a
ManualClock (the console reads the same clock) and SequentialIds, the database
at a fixed relative path (the top bar shows it), no blinking cursor.
SQLite only: the screens do not depend on the database. Update with
``pytest tests/tui/screens/test_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from textual.widgets import Input

from usermgmt.core.clock import ManualClock
from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.ids import SequentialIds
from usermgmt.core.services import build_services
from usermgmt.tui.app import UserMgmtApp
from usermgmt.tui.screens.error import ErrorScreen
from usermgmt.tui.screens.message import MessageScreen
from usermgmt.tui.screens.mfa_codes import RecoveryCodesScreen
from usermgmt.tui.screens.mfa_login import LoginScreen
from usermgmt.tui.screens.mfa_manage import MfaDisableScreen, RecoveryCodesRenewScreen
from usermgmt.tui.screens.mfa_setup import MfaSetupScreen

from ..own_account import RECOVERY_CODES, OwnAccount
from ..tui_helpers import FIXED_NOW, SIZE, STRONG_PASSWORD, settle

PEOPLE = [
    ("ada@example.com", "ada", "Ada", "Lovelace", ["admin"]),
    ("grace@example.com", "grace", "Grace", "Hopper", ["moderator", "user"]),
    ("alan@example.com", "alan", "Alan", "Turing", ["user"]),
    ("edsger@example.com", "edsger", "Edsger", "Dijkstra", ["user"]),
    ("barbara@example.com", "barbara", "Barbara", "Liskov", ["user"]),
    ("donald@example.com", "donald", "Donald", "Knuth", ["user"]),
    ("margaret@example.com", "margaret", "Margaret", "Hamilton", ["user"]),
    ("ken@example.com", None, "Ken", "Thompson", ["user"]),
]


@pytest.fixture(scope="module")
def seeded_db(sqlite_template, tmp_path_factory):
    """A SQLite file with the same people, times and ids every run, seeded once a module."""
    path = tmp_path_factory.mktemp("snapshots") / "usermgmt.db"
    shutil.copy(sqlite_template, path)
    # One clock for the core and the console, moved while seeding and then frozen at
    # FIXED_NOW (so "live session" means the same thing every day); ids from a counter.
    clock = ManualClock(FIXED_NOW - timedelta(days=30))
    services = build_services(
        load_settings(database_url=f"sqlite:///{path}"),
        clock=clock,
        ids=SequentialIds("snapshots"),
    )
    op, ctx = Actor.operator("cli", "seed"), RequestContext(request_id="seed")
    made = []
    for i, (email, username, first, last, roles) in enumerate(PEOPLE):
        clock.set(FIXED_NOW - timedelta(days=30 - i * 3, hours=i))
        made.append(
            services.users.create(
                op,
                ctx,
                {
                    "email": email,
                    "username": username,
                    "first_name": first,
                    "last_name": last,
                    "roles": roles,
                    "email_verified": i % 3 != 2,
                    "password": STRONG_PASSWORD if i < 2 else None,
                },
            )
        )
    clock.set(FIXED_NOW - timedelta(hours=5))
    services.auth.login(
        RequestContext(ip="192.0.2.10", user_agent="Firefox/128"),
        {"email": "grace@example.com", "password": STRONG_PASSWORD},
    )
    clock.set(FIXED_NOW - timedelta(hours=2))
    services.users.lock(op, ctx, str(made[3].id))
    services.users.update(op, ctx, str(made[1].id), {"profile": {"timezone": "America/New_York"}})
    services.users.delete(op, ctx, str(made[6].id))
    services.close()
    return path


@pytest.fixture
def snapshot_services(seeded_db, tmp_path, monkeypatch):
    """Services over a copy of the seeded file, at a fixed relative path (the top bar
    shows it), with the clock frozen at FIXED_NOW."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(seeded_db, tmp_path / "usermgmt.db")
    services = build_services(
        load_settings(database_url="sqlite:///usermgmt.db"),
        clock=ManualClock(FIXED_NOW),
        ids=SequentialIds("snapshots-run"),
    )
    yield services
    services.close()


def make(services) -> UserMgmtApp:
    return UserMgmtApp(services, os_user="operator")


async def steady(pilot, rounds: int = 50) -> None:
    """Pump until two renders in a row are the same (bounded).

    Workers having settled is not enough for a snapshot: a DataTable that got its
    rows sizes its columns on a later refresh, and under load the screenshot was
    once taken in between (header widths of the empty table over the new row).
    """
    last, same = None, 0
    for _ in range(rounds):
        # A real gap, not only a pass of the queue: a footer rebuilt "after the next
        # refresh" (a focus change) can wait behind a render under load.
        await pilot.pause(0.02)
        shot = pilot.app.export_screenshot()
        same = same + 1 if shot == last else 0
        if same == 2:
            return
        last = shot
    raise AssertionError("the screen did not stop changing")


def no_blink(app) -> None:
    for box in app.screen.query(Input):
        box.cursor_blink = False


def test_users_screen(snap_compare, snapshot_services):
    async def ready(pilot):
        await settle(pilot)
        await steady(pilot)

    assert snap_compare(make(snapshot_services), terminal_size=SIZE, run_before=ready)


def test_detail_screen(snap_compare, snapshot_services):
    async def open_grace(pilot):
        await settle(pilot)
        await pilot.press("end", "up", "enter")  # grace: signed in, moderator, a session
        await settle(pilot)
        await steady(pilot)

    assert snap_compare(make(snapshot_services), terminal_size=SIZE, run_before=open_grace)


def test_new_user_form_with_errors(snap_compare, snapshot_services):
    async def bad_input(pilot):
        await settle(pilot)
        await pilot.press("n")
        form = pilot.app.screen
        form.query_one("#in-email").value = "ada@exampl"
        form.query_one("#in-username").value = "Ada Lovelace"
        form.query_one("#in-password").value = "lovelace"
        await pilot.press("ctrl+s")
        await settle(pilot)
        no_blink(pilot.app)
        await steady(pilot)

    assert snap_compare(make(snapshot_services), terminal_size=SIZE, run_before=bad_input)


def test_audit_screen(snap_compare, snapshot_services):
    async def audit(pilot):
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        await steady(pilot)

    assert snap_compare(make(snapshot_services), terminal_size=SIZE, run_before=audit)


GRACE = ("end", "up")  # from the top of the users list (newest first) to grace


def _push(screen_factory):
    async def push(pilot):
        pilot.app.push_screen(screen_factory())

    return push


def _push_with_ctx(screen_factory):
    async def push(pilot):
        pilot.app.push_screen(screen_factory(pilot.app.ctx))

    return push


# Every screen and dialog, reached the way an operator does (keys), or pushed for the two
# that only appear after a result or a bug.
EVERY_SCREEN = {
    "users": (),
    "detail": (*GRACE, "enter"),
    "new_user": ("n",),
    "edit_user": (*GRACE, "e"),
    "roles": (*GRACE, "g"),
    "lock": (*GRACE, "l"),
    "password": (*GRACE, "p"),
    "confirm_delete": (*GRACE, "d"),
    "help": ("question_mark",),
    "event": (*GRACE, "enter", "enter"),
    "new_api_key": (*GRACE, "enter", "K"),
    "message": (
        _push(
            lambda: MessageScreen("API key ci created", "Copy the secret now.\n\numk_" + "x" * 40)
        ),
    ),
    "error": (_push(lambda: ErrorScreen("inc-0001", "KeyError")),),
    "webhooks": ("w",),
    "new_webhook": ("w", "n"),
    "audit": ("a",),
    # The remote console's two-step sign-in, with a fixed secret and context (own_account.py).
    "mfa_setup": (_push_with_ctx(MfaSetupScreen),),
    "mfa_setup_required": (_push_with_ctx(lambda ctx: MfaSetupScreen(ctx, required=True)),),
    "mfa_login": (_push_with_ctx(LoginScreen),),
    "mfa_codes": (_push(lambda: RecoveryCodesScreen(RECOVERY_CODES)),),
    "mfa_disable": (_push_with_ctx(MfaDisableScreen),),
    "mfa_new_codes": (_push_with_ctx(RecoveryCodesRenewScreen),),
}


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
@pytest.mark.parametrize("name", list(EVERY_SCREEN))
def test_every_screen_at_size(name, size, snap_compare, snapshot_services, tmp_path):
    async def open_it(pilot):
        await settle(pilot)
        for step in EVERY_SCREEN[name]:
            if callable(step):
                await step(pilot)
            else:
                await pilot.press(step)
            await settle(pilot)
        no_blink(pilot.app)
        await steady(pilot)

    app = make(OwnAccount(snapshot_services, tmp_path / "contexts"))
    assert snap_compare(app, terminal_size=size, run_before=open_it)
