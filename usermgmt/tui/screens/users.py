"""The home screen: every user, lazily paged, searched as you type, filtered and sorted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Checkbox, Input, Select

from usermgmt.core.schemas import UserOut
from usermgmt.core.vocabulary import FILTER_STATUSES, ROLE_NAMES
from usermgmt.tui import formatting as fmt
from usermgmt.tui.context import ConsoleContext
from usermgmt.tui.messages import DatabaseBack
from usermgmt.tui.paging import UserFilter, UserSource
from usermgmt.tui.screens.actions import USER_ACTION_BINDINGS, UserActions
from usermgmt.tui.widgets.bars import StatusLine, TopBar
from usermgmt.tui.widgets.lazy_table import Column, LazyTable
from usermgmt.tui.widgets.steady_footer import SteadyFooter

COLUMNS = [
    Column("email", "Email", ratio=5, min_width=16, sort="email"),
    Column("username", "Username", ratio=3, min_width=8, sort="username"),
    Column("name", "Name", ratio=3, min_width=8),
    Column("roles", "Roles", width=16),
    Column("status", "Status", width=10),
    Column("last_login", "Last login", width=12, sort="last_login_at"),
    Column("created", "Created", width=10, sort="created_at"),
]
TO_TABLE = "From the search box or a filter back to the table"
# `o` cycles through these; the first direction is the useful one.
SORT_CYCLE = ["-created_at", "email", "username", "-last_login_at"]
SORT_NAMES = {
    "created_at": "created",
    "email": "email",
    "username": "username",
    "last_login_at": "last login",
}


def describe_sort(sort: str) -> str:
    name = SORT_NAMES[sort.lstrip("-")]
    if sort.lstrip("-") in ("created_at", "last_login_at"):
        return f"{name}, {'newest' if sort.startswith('-') else 'oldest'} first"
    return f"{name}, {'Z→A' if sort.startswith('-') else 'A→Z'}"


class UsersScreen(UserActions, Screen):
    HELP_TITLE = "Users"
    AUTO_FOCUS = "#users"
    BINDINGS = [
        Binding("slash", "search", "Search", key_display="/"),
        Binding("escape", "to_table", "To the table", tooltip=TO_TABLE),
        Binding("down", "to_table", "To the table", show=False, tooltip=TO_TABLE),
        *USER_ACTION_BINDINGS,
        Binding("a", "audit", "Audit", tooltip="The audit log, newest first"),
        Binding("w", "webhooks", "Webhooks", tooltip="Webhook subscriptions and deliveries"),
        Binding("f", "filters", "Filters", show=False),
        Binding("x", "toggle_deleted", "Show / hide deleted users", show=False),
        Binding("o", "sort_next", "Sort by the next column", show=False),
        Binding("O", "sort_reverse", "Reverse the sort", show=False),
        Binding("c", "clear_filters", "Clear search and filters", show=False),
        Binding("ctrl+r,f5", "refresh", "Refresh", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, ctx: ConsoleContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.filter = UserFilter()
        self._search_timer: Timer | None = None
        self._follow = None  # the id of a user to keep the cursor on after a reload

    # ---- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TopBar("Users", self.ctx.where)
        with Horizontal(id="filters"):
            yield Input(placeholder="/ search email, username, name", id="search", compact=True)
            yield Select(
                [(f"role: {r}", r) for r in ROLE_NAMES],
                prompt="role: any",
                id="role",
                compact=True,
            )
            yield Select(
                [(f"status: {s}", s) for s in FILTER_STATUSES],
                prompt="status: any",
                id="status",
                compact=True,
            )
            yield Checkbox("deleted", id="deleted", compact=True)
        yield LazyTable(COLUMNS, self.cell, empty_text="No users match.", id="users")
        yield StatusLine(id="status-line")
        yield SteadyFooter(compact=True)

    @property
    def table(self) -> LazyTable:
        return self.query_one("#users", LazyTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.load()

    # ---- data ----------------------------------------------------------------------------

    def load(self) -> None:
        """Show the current filter from the top (a new query)."""
        ctx = self.ctx
        source = UserSource(
            ctx.services, ctx.actor, self.filter, ctx.page_size, ahead=ctx.take_first_page()
        )
        self.table.set_source(source, sort=self.filter.sort)
        self.update_status()

    def cell(self, user: UserOut, key: str) -> tuple[str, str | None]:
        now = self.ctx.now()
        if key == "email":
            return user.email, None
        if key == "username":
            return user.username or "", None
        if key == "name":
            if user.kind == "service":  # marked in every list
                return f"service · {fmt.full_name(user)}".rstrip(" ·"), "muted"
            return fmt.full_name(user), None
        if key == "roles":
            return ",".join(user.roles), "accent" if "admin" in user.roles else None
        if key == "status":
            word = self.ctx.status(user)
            return word, fmt.STATUS_STYLE[word]
        if key == "last_login":
            return fmt.ago(user.last_login_at, now), None
        if key == "created":
            return fmt.day(user.created_at), None
        return "", None

    def current_user(self) -> UserOut | None:
        return self.table.cursor_value

    def user_loading(self) -> bool:
        return self.table.cursor_value is None and self.table.row_count > 0

    def user_changed(self, user: UserOut | None) -> None:
        """Reload; the cursor follows the user acted on if it is still on screen (a new
        user appears at the top of the default order: the cursor goes there)."""
        self._follow = user.id if user is not None else None
        self.table.reload()

    def on_lazy_table_highlighted(self, message: LazyTable.Highlighted) -> None:
        self.refresh_user_bindings()
        self.update_status()

    def on_lazy_table_loaded(self, message: LazyTable.Loaded) -> None:
        if self._follow is not None and not self.table.loading:
            follow, self._follow = self._follow, None
            cache = self.table.cache
            for page in sorted(p for p in cache.pages if cache.has_page(p)):
                for offset, row in enumerate(cache.pages[page]):
                    if row.id == follow:
                        self.table.move_cursor(page * cache.page_size + offset)
                        break
        self.update_status()

    def on_lazy_table_selected(self, message: LazyTable.Selected) -> None:
        self.open_detail(message.row)

    def on_lazy_table_sort_requested(self, message: LazyTable.SortRequested) -> None:
        column = message.column.sort
        assert column is not None
        current = self.filter.sort
        if current.lstrip("-") == column:
            sort = column if current.startswith("-") else f"-{column}"
        else:
            sort = next(s for s in SORT_CYCLE if s.lstrip("-") == column)
        self.set_filter(sort=sort)

    def on_database_back(self, message: DatabaseBack) -> None:
        self.table.reload()

    def update_status(self) -> None:
        table = self.table
        cache = table.cache
        if cache.exact:
            count = f"{cache.height:,} user{'s' if cache.height != 1 else ''}"
        elif cache.extent:
            count = f"{cache.extent:,}+ users, counting…"
        else:
            count = "loading…"
        parts = [count]
        if described := self.filter.describe():
            parts[0] += f" ({described})"
        if cache.height:
            parts.append(f"row {table.cursor_row + 1:,}")
        parts.append(f"sorted by {describe_sort(self.filter.sort)}")
        if table.loading and cache.exact:
            parts.append("loading…")
        self.query_one("#status-line", StatusLine).update("  ·  ".join(parts))

    def set_filter(self, **changes: Any) -> None:
        values = {**self.filter.__dict__, **changes}
        new = UserFilter(**values)
        if new != self.filter:
            self.filter = new
            self.load()

    # ---- search and filters ----------------------------------------------------------

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "search":
            return
        if self._search_timer is not None:
            self._search_timer.stop()
        value = event.value
        self._search_timer = self.set_timer(
            self.ctx.search_debounce, lambda: self.set_filter(search=value)
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "search":
            if self._search_timer is not None:
                self._search_timer.stop()
            self.set_filter(search=event.value)
            self.table.focus()

    def action_to_table(self) -> None:
        self.table.focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        value = None if event.value is Select.NULL else event.value
        if event.select.id == "role":
            self.set_filter(role=value)
        elif event.select.id == "status":
            self.set_filter(status=value)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id == "deleted":
            self.set_filter(include_deleted=event.value)

    def _choose(self, select_id: str, value: str) -> None:
        self.query_one(select_id, Select).value = value  # Select.Changed sets the filter

    def action_filters(self) -> None:
        self.query_one("#role", Select).focus()

    def action_toggle_deleted(self) -> None:
        box = self.query_one("#deleted", Checkbox)
        box.value = not box.value  # Checkbox.Changed sets the filter

    def action_clear_filters(self) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        with self.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
            self.query_one("#search", Input).value = ""
            self.query_one("#role", Select).clear()
            self.query_one("#status", Select).clear()
            self.query_one("#deleted", Checkbox).value = False
        self.set_filter(search="", role=None, status=None, include_deleted=False)
        self.table.focus()

    def action_sort_next(self) -> None:
        current = self.filter.sort.lstrip("-")
        keys = [s.lstrip("-") for s in SORT_CYCLE]
        nxt = SORT_CYCLE[(keys.index(current) + 1) % len(SORT_CYCLE)]
        self.set_filter(sort=nxt)

    def action_sort_reverse(self) -> None:
        sort = self.filter.sort
        self.set_filter(sort=sort[1:] if sort.startswith("-") else f"-{sort}")

    def action_refresh(self) -> None:
        self.table.reload()

    # ---- navigation -----------------------------------------------------------------

    def open_detail(self, user: UserOut) -> None:
        from usermgmt.tui.screens.detail import DetailScreen

        self.app.push_screen(DetailScreen(self.ctx, user), self._detail_closed)

    def _detail_closed(self, changed: bool | None) -> None:
        if changed:
            self.table.reload()

    def action_audit(self) -> None:
        from usermgmt.tui.screens.audit import show_audit_log

        show_audit_log(self.app, self.ctx)

    def action_webhooks(self) -> None:
        from usermgmt.tui.screens.webhooks import WebhooksScreen

        self.app.push_screen(WebhooksScreen(self.ctx))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "to_table":
            return self.focused is not self.table
        return self.check_user_action(action)

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("New user", "Create a user (n)", self.action_new_user)
        yield SystemCommand("Search users", "Filter as you type (/)", self.action_search)
        yield SystemCommand("Audit log", "Every change, newest first (a)", self.action_audit)
        shown = "Hide" if self.filter.include_deleted else "Show"
        yield SystemCommand(f"{shown} deleted users", "Toggle (x)", self.action_toggle_deleted)
        yield SystemCommand(
            "Clear filters", "Search, role, status, deleted (c)", self.action_clear_filters
        )
        for role in ROLE_NAMES:
            yield SystemCommand(
                f"Filter: role {role}",
                "Only users with this role",
                lambda r=role: self._choose("#role", r),
            )
        for status in FILTER_STATUSES:
            yield SystemCommand(
                f"Filter: status {status}",
                "Only users in this state",
                lambda s=status: self._choose("#status", s),
            )
        for sort in SORT_CYCLE:
            for s in (sort, sort[1:] if sort.startswith("-") else f"-{sort}"):
                yield SystemCommand(
                    f"Sort by {describe_sort(s)}",
                    "Order of the table",
                    lambda s=s: self.set_filter(sort=s),
                )
        yield SystemCommand("Refresh", "Fetch the rows again (ctrl+r)", self.action_refresh)
        if user := self.current_user():
            for binding in USER_ACTION_BINDINGS:
                if self.check_user_action(binding.action):
                    yield SystemCommand(
                        f"{binding.description}: {fmt.in_markup(user.email)}",
                        f"On the highlighted user ({binding.key})",
                        getattr(self, f"action_{binding.action}"),
                    )
