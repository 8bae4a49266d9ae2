"""One user: profile, roles, live sessions, API keys and their recent audit events; every
action."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Static

from usermgmt.core.errors import DomainError, NotFound
from usermgmt.core.key_schemas import ApiKeyOut
from usermgmt.core.schemas import AuditEventOut, SessionOut, UserOut
from usermgmt.core.text import printable
from usermgmt.tui import formatting as fmt
from usermgmt.tui.context import ConsoleContext
from usermgmt.tui.messages import DatabaseBack
from usermgmt.tui.screens.actions import USER_ACTION_BINDINGS, UserActions
from usermgmt.tui.screens.api_keys import KEY_BINDING, KeyActions
from usermgmt.tui.widgets.bars import KeyFooter, StatusLine, TopBar

RECENT_EVENTS = 20
# How to reach the panels: Tab stops at the scrolling profile, then at each table.
NAVIGATION = "tab: profile · sessions · keys · events   enter: revoke / show   a: all events"
STATUS_COLOR = {
    "good": "$text-success",
    "warn": "$text-warning",
    "bad": "$text-error",
    "muted": "$text-muted",
}


@dataclass(frozen=True)
class Detail:
    user: UserOut
    sessions: list[SessionOut]
    events: list[AuditEventOut]
    keys: list[ApiKeyOut]


class DetailScreen(KeyActions, UserActions, Screen[bool]):
    """Dismisses with True if anything was changed here (the list then reloads)."""

    HELP_TITLE = "User detail"
    AUTO_FOCUS = "#events"
    # Below 110 columns the side panels go under the profile instead of beside it.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        *(b for b in USER_ACTION_BINDINGS if b.action != "new_user"),
        Binding("a", "audit", "All events"),
        KEY_BINDING,
        Binding("m", "reset_mfa", "Reset 2FA", tooltip="Remove the second factor (asks first)"),
        Binding("ctrl+r,f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self, ctx: ConsoleContext, user: UserOut) -> None:
        super().__init__()
        self.ctx = ctx
        self.user = user
        self.detail: Detail | None = None
        self.changed = False

    def compose(self) -> ComposeResult:
        yield TopBar("User", self.ctx.where)
        yield Static("", id="detail-title")
        yield Static(NAVIGATION, id="detail-hint", markup=False)
        # The panels scroll (Tab focuses the scroll, then each table); the events stay below.
        with VerticalScroll(id="detail-top"), Horizontal(id="detail-panels"):
            yield Static("", id="profile", classes="box")
            with Vertical(id="detail-side"):
                yield Static("", id="roles", classes="box")
                sessions = DataTable(id="sessions", classes="box", cursor_type="row")
                sessions.border_title = "Sessions"
                yield sessions
                keys = DataTable(id="keys", classes="box", cursor_type="row")
                keys.border_title = "API keys"
                yield keys
        events = DataTable(id="events", classes="box", cursor_type="row")
        events.border_title = "Recent audit events"
        yield events
        yield StatusLine(id="status-line")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#profile", Static).border_title = "Profile"
        self.query_one("#roles", Static).border_title = "Roles"
        sessions = self.query_one("#sessions", DataTable)
        sessions.add_columns("Started", "Last used", "Expires", "IP", "Client")
        keys = self.query_one("#keys", DataTable)
        keys.add_columns("Name", "Prefix", "Scopes", "State", "Last used", "Expires")
        self.show_user(self.user)
        self.load()

    # ---- data ------------------------------------------------------------------------

    def load(self) -> None:
        ctx, uid = self.ctx, str(self.user.id)

        def job(services) -> Detail:
            user = services.user_reads.get(ctx.actor, uid, include_deleted=True)
            sessions = services.sessions.list(ctx.actor, uid)
            events = services.audit.query(ctx.actor, {"target_id": uid, "limit": RECENT_EVENTS})
            keys = services.api_keys.list(ctx.actor, {"user_id": uid}).data
            return Detail(user, sessions, events.data, keys)

        self.query_one("#status-line", StatusLine).update("loading…")
        ctx.run(self, job, self.show_detail, failed=self._failed, group="detail")

    def _failed(self, exc: DomainError) -> bool:
        self.query_one("#status-line", StatusLine).update("")
        if isinstance(exc, NotFound):
            self.app.notify(f"{self.user.email} no longer exists.", severity="warning")
            self.dismiss(True)
            return True
        return False

    def show_detail(self, detail: Detail) -> None:
        self.detail = detail
        self.show_user(detail.user)
        now = self.ctx.now()
        sessions = self.query_one("#sessions", DataTable)
        sessions.clear()
        for s in detail.sessions:
            sessions.add_row(
                fmt.ago(s.created_at, now),
                fmt.ago(s.last_used_at, now),
                fmt.ago(s.expires_at, now),
                fmt.plain(s.ip or "—"),
                fmt.plain(s.user_agent or "—"),
            )
        sessions.border_title = f"Sessions ({len(detail.sessions)} live; enter: revoke)"
        keys = self.query_one("#keys", DataTable)
        keys.clear()
        for k in detail.keys:
            keys.add_row(
                fmt.plain(k.name),
                k.prefix,
                ", ".join(k.scopes),
                k.state,
                fmt.ago(k.last_used_at, now),
                fmt.ago(k.expires_at, now) if k.expires_at else "never",
            )
        keys.border_title = f"API keys ({len(detail.keys)}; K: new, enter: revoke)"
        self.show_events(detail.events)
        self.query_one("#status-line", StatusLine).update(
            f"id {detail.user.id}  ·  updated {fmt.stamp_ago(detail.user.updated_at, now)}"
        )

    def show_events(self, events_out: list[AuditEventOut]) -> None:
        """The events table, its Changes column as wide as the screen allows (no h-scroll)."""
        events = self.query_one("#events", DataTable)
        events.clear(columns=True)
        by_width = 24 if self.size.width >= 120 else 14  # narrower: more room for Changes
        changes_width = max(self.size.width - (19 + 20 + by_width) - 4 * 2 - 6, 12)
        events.add_column("When", width=19)
        events.add_column("Action", width=20)
        events.add_column("By", width=by_width)
        events.add_column("Changes", width=changes_width)
        for e in events_out:
            events.add_row(
                fmt.stamp(e.at),
                e.action,  # written by the code, never by a user
                fmt.plain(e.actor_label),
                fmt.plain(fmt.summarize_changes(e.changes)),
            )
        events.border_title = f"Recent audit events ({len(events_out)} newest; a: all)"

    def on_resize(self) -> None:
        if self.detail is not None:
            self.show_events(self.detail.events)

    def show_user(self, user: UserOut) -> None:
        self.user = user
        now = self.ctx.now()
        word = self.ctx.status(user)
        color = STATUS_COLOR[fmt.STATUS_STYLE[word]]
        title = Content.assemble(  # not markup: the email and name are shown as stored
            (printable(user.email), "bold"),
            "  ",
            (word, color),
            "  ",
            printable(fmt.full_name(user)),
        )
        self.query_one("#detail-title", Static).update(title)
        p = user.profile
        rows = [
            ("Kind", "service account" if user.kind == "service" else "person"),
            ("Username", user.username or "—"),
            ("First name", user.first_name or "—"),
            ("Last name", user.last_name or "—"),
            ("Status", word),
            ("Active", "yes" if user.is_active else "no"),
            ("Email verified", "yes" if user.email_verified else "no"),
            ("Second factor", "on (TOTP)" if user.mfa_enabled else "off"),
            ("Locked", fmt.lock_text(user, now)),
            ("Last login", fmt.stamp_ago(user.last_login_at, now)),
            ("Created", fmt.stamp_ago(user.created_at, now)),
            ("Deleted", fmt.stamp_ago(user.deleted_at, now, never="no")),
            ("Phone", p.phone or "—"),
            ("Timezone", p.timezone),
            ("Locale", p.locale),
            ("Avatar", p.avatar_url or "—"),
            ("Bio", p.bio or "—"),
        ]
        profile = Text()
        for label, value in rows:
            profile.append(f"{label:<15}", "dim")
            profile.append(f"{printable(value)}\n")
        profile.rstrip()
        self.query_one("#profile", Static).update(profile)
        self.query_one("#roles", Static).update("\n".join(user.roles) or "(none)")
        self.refresh_user_bindings()

    # ---- actions -------------------------------------------------------------------

    def current_user(self) -> UserOut | None:
        return self.user

    def user_changed(self, user: UserOut | None) -> None:
        self.changed = True
        if user is not None:
            self.show_user(user)
        self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "new_key":
            return self.user.deleted_at is None and self.user.is_active
        if action == "reset_mfa":
            return self.user.mfa_enabled and self.user.deleted_at is None
        return self.check_user_action(action)

    def on_database_back(self, message: DatabaseBack) -> None:
        self.load()

    def action_back(self) -> None:
        self.dismiss(self.changed)

    def action_refresh(self) -> None:
        self.load()

    def action_audit(self) -> None:
        from usermgmt.tui.screens.audit import AuditScreen

        self.app.push_screen(AuditScreen(self.ctx, target=self.user))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from usermgmt.tui.screens.event import EventScreen

        if self.detail is None:
            return
        if event.data_table.id == "events":
            self.app.push_screen(EventScreen(self.detail.events[event.cursor_row]))
        elif event.data_table.id == "sessions" and self.detail.sessions:
            self.revoke_session(self.detail.sessions[event.cursor_row])
        elif event.data_table.id == "keys" and self.detail.keys:
            self.revoke_key(self.detail.keys[event.cursor_row])

    def keys_changed(self) -> None:
        self.load()

    def revoke_session(self, session: SessionOut) -> None:
        """Enter on one session: sign the user out of that device only (asks first)."""
        from usermgmt.tui.screens.confirm import ConfirmScreen

        ctx, sid = self.ctx, str(session.id)
        where = ", ".join(p for p in (session.ip, session.user_agent) if p) or "unknown device"

        def answered(yes: bool | None) -> None:
            if yes:
                self._core(
                    lambda s: s.sessions.revoke(ctx.actor, ctx.request_context(), sid),
                    lambda _none: self._done(f"Revoked the session from {where}.", None),
                )

        self.app.push_screen(
            ConfirmScreen(
                "Revoke this session?",
                f"{self.user.email} is signed out on {where} (started "
                f"{fmt.stamp(session.created_at)} UTC); other sessions stay.",
                "Revoke",
            ),
            answered,
        )

    def action_reset_mfa(self) -> None:
        """Remove the user's second factor (a lost device); asks first. The server (or
        the core) refuses anyone but an admin."""
        from usermgmt.tui.screens.confirm import ConfirmScreen

        ctx, uid, email = self.ctx, str(self.user.id), self.user.email
        if not self.user.mfa_enabled:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._core(
                    lambda s: s.mfa.reset(ctx.actor, ctx.request_context(), uid),
                    lambda _none: self._done(
                        f"Reset the second factor of {email}; their sessions ended.", None
                    ),
                )

        self.app.push_screen(
            ConfirmScreen(
                "Reset the second factor?",
                f"{email} signs in with the password alone until they enrol again; every "
                "session of theirs ends and they are mailed a notice.",
                "Reset",
            ),
            answered,
        )

    def palette_commands(self) -> Iterable[SystemCommand]:
        for binding in USER_ACTION_BINDINGS:
            if binding.action != "new_user" and self.check_user_action(binding.action):
                yield SystemCommand(
                    f"{binding.description}: {fmt.in_markup(self.user.email)}",
                    f"({binding.key})",
                    getattr(self, f"action_{binding.action}"),
                )
        yield SystemCommand("All audit events of this user", "(a)", self.action_audit)
        yield SystemCommand("Back to the users", "(escape)", self.action_back)
