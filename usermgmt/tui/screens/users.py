"""The home screen: every user, lazily paged, searched as you type, filtered and sorted.

It refreshes itself every ``ctx.refresh_seconds`` (USERMGMT_TUI_REFRESH_SECONDS;
0: never) while nothing is in front of it, keeping the highlighted user under
the cursor, the scroll position and the marks; a highlighted user gone meanwhile
stays under the cursor, struck through, until the cursor moves. Rows are marked
(space, shift+↑/↓, V for a range) to act on them together (``screens.bulk``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Checkbox, Input, Select

from usermgmt.core.errors import NotFound
from usermgmt.core.schemas import UserOut
from usermgmt.core.vocabulary import FILTER_STATUSES, ROLE_NAMES
from usermgmt.tui import formatting as fmt
from usermgmt.tui.context import ConsoleContext
from usermgmt.tui.messages import DatabaseBack
from usermgmt.tui.paging import Fetch, UserFilter, UserSource
from usermgmt.tui.screens import bulk
from usermgmt.tui.screens.actions import USER_ACTION_BINDINGS, UserActions
from usermgmt.tui.widgets.bars import KeyFooter, StatusLine, TopBar
from usermgmt.tui.widgets.lazy_table import Column, LazyTable

COLUMNS = [
    # The minimums let every column fit an 80-column terminal; wider ones share the rest.
    Column("email", "Email", ratio=5, min_width=14, sort="email"),
    Column("username", "Username", ratio=3, min_width=7, sort="username"),
    Column("name", "Name", ratio=3, min_width=7, sort="name"),
    # A set: the role filter (f) narrows instead of a sort.
    Column("roles", "Roles", ratio=1, min_width=9),
    Column("status", "Status", width=10, sort="status"),
    Column("last_login", "Last login", width=12, sort="last_login_at"),
    Column("created", "Created", width=10, sort="created_at"),
]
TO_TABLE = "From the search box or a filter back to the table"
MAX_RANGE = 10_000  # rows V marks at once
MARK_ACTIONS = {"toggle_mark", "mark_down", "mark_up", "mark_range", "copy_id", "copy_email"}
# `o` cycles through these; the first direction is the useful one.
SORT_CYCLE = ["-created_at", "email", "username", "name", "status", "-last_login_at"]
SORT_NAMES = {
    "created_at": "created",
    "email": "email",
    "username": "username",
    "name": "name",
    "status": "status",
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
        Binding("escape", "clear_marks", "Clear marks", tooltip="Unmark every marked user"),
        Binding("down", "to_table", "To the table", show=False, tooltip=TO_TABLE),
        # Off the footer (it is full at 120 columns); in ? and docs/tui.md.
        Binding("space", "toggle_mark", "Mark", show=False, tooltip="Mark or unmark, move down"),
        Binding("shift+down", "mark_down", "Mark and move down", show=False),
        Binding("shift+up", "mark_up", "Mark and move up", show=False),
        Binding("V", "mark_range", "Mark from the last mark to here", show=False),
        *USER_ACTION_BINDINGS,
        Binding("y", "copy_id", "Copy the id", show=False),
        Binding("Y", "copy_email", "Copy the email", show=False),
        Binding("colon,ctrl+g", "goto", "Go to a user", show=False, key_display=":"),
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
        # After a refresh: the user that was under the cursor and its row, to check it
        # is still there (else it stays as a ghost).
        self._was_here: tuple[UserOut, int] | None = None
        self.marks: dict[str, UserOut] = {}  # by id, in the order marked
        self._anchor: int | None = None  # where the last mark was made (V marks from it)
        self.gone: dict[str, str] = {}  # user id -> why it left the list
        self.bulk_running: str | None = None  # the progress of a bulk action

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
        yield LazyTable(
            COLUMNS,
            self.cell,
            empty_text="No users match.",
            id="users",
            is_marked=lambda user: str(user.id) in self.marks,
        )
        yield StatusLine(id="status-line")
        yield KeyFooter()

    @property
    def table(self) -> LazyTable:
        return self.query_one("#users", LazyTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.load()
        seconds = self.ctx.refresh_seconds
        if seconds > 0:
            self.set_interval(seconds, self.auto_refresh)

    # ---- data ----------------------------------------------------------------------------

    def load(self) -> None:
        """Show the current filter from the top (a new query)."""
        self.gone.clear()
        ctx = self.ctx
        source = UserSource(
            ctx.services, ctx.actor, self.filter, ctx.page_size, ahead=ctx.take_first_page()
        )
        self.table.set_source(source, sort=self.filter.sort)
        self.update_status()

    def cell(self, user: UserOut, key: str) -> tuple[str, str | None]:
        if str(user.id) in self.gone:  # struck through; the status line says why
            if key == "status":
                return "gone", "gone"
            text, _ = self._cell(user, key)
            return text, "gone"
        return self._cell(user, key)

    def _cell(self, user: UserOut, key: str) -> tuple[str, str | None]:
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

    def marked_users(self) -> list[UserOut]:
        return list(self.marks.values())

    def gone_reason(self, user: UserOut) -> str | None:
        return self.gone.get(str(user.id))

    def user_gone(self, user: UserOut, reason: str) -> None:
        self.gone[str(user.id)] = reason
        self.refresh_rows()

    def bulk_progress(self, text: str | None) -> None:
        self.bulk_running = text
        self.update_status()

    def bulk_done(self, verb: bulk.Verb, outcome) -> None:
        """Unmark the users acted on (the failed ones stay marked), reload once."""
        for user_id in outcome.done:
            self.marks.pop(user_id, None)
        self._marks_changed()
        self.user_changed(None)  # not refresh_rows: users deleted here are no ghosts

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
        table = self.table
        if self.marks and message.page is not None and table.cache.has_page(message.page):
            for row in table.cache.pages[message.page]:  # marks hold the users as now
                if str(row.id) in self.marks:
                    self.marks[str(row.id)] = row
        if self._follow is not None and not table.fetching:
            follow, self._follow = self._follow, None
            index = table.index_of(lambda row: row.id == follow)
            if index is not None:
                self.gone.pop(str(follow), None)  # back (restored elsewhere)
                if index != table.cursor_row:  # rows came or went above: the user keeps
                    shift = index - table.cursor_row  # its line on screen
                    table.scroll_to(y=table.scroll_y + shift, animate=False, immediate=True)
                    table.move_cursor(index)
            was_here, self._was_here = self._was_here, None
            if was_here is not None and index is None:
                self._check_gone(*was_here)
        self.update_status()

    # ---- live data -------------------------------------------------------------------

    def auto_refresh(self) -> None:
        """The interval's refresh: only while this screen is in front (no dialog), the
        database answers, and no fetch or bulk action is under way (one at a time)."""
        if self.app.screen is not self or not getattr(self.app, "online", True):
            return
        table = self.table
        if table.fetching or table.counting or self.bulk_running is not None:
            return
        self.refresh_rows()

    def refresh_rows(self) -> None:
        """Fetch the rows again where they are, keeping the highlighted user under the
        cursor (or, gone meanwhile, as a ghost where it was)."""
        table = self.table
        user = table.cursor_value
        if user is not None and table.ghost is None:
            self._follow = user.id
            self._was_here = (user, table.cursor_row)
        # Only the user under the cursor (or its ghost) is remembered as gone: any other
        # is found again, or not, by this refresh.
        here = str(user.id) if user is not None else None
        self.gone = {k: v for k, v in self.gone.items() if k == here}
        table.reload()

    def _check_gone(self, user: UserOut, index: int) -> None:
        """The highlighted user left the rows fetched: ask the core why (deleted, or
        changed so it no longer matches the filter or moved in the order)."""
        ctx, uid, generation = self.ctx, str(user.id), self.table.generation

        def told(reason: str) -> None:
            table = self.table
            if table.generation != generation or table.ghost is not None:
                return  # the list changed again meanwhile
            self.gone[uid] = reason
            table.cursor_row = min(index, max(table.row_count, 0))
            table.keep_ghost(user)

        def job(s) -> str:
            try:
                current = s.user_reads.get(ctx.actor, uid)
            except NotFound:
                return "deleted elsewhere"
            changed = current.model_dump() != user.model_dump()
            return "changed elsewhere" if changed else "no longer listed"

        ctx.run(self, job, told, group="check-gone")

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
        self.refresh_rows()

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
        if self.marks:
            parts.append(f"{len(self.marks):,} marked")
        if self.bulk_running:
            parts.append(self.bulk_running)
        if cache.height:
            parts.append(f"row {table.cursor_row + 1:,}")
        if table.ghost is not None and table.cursor_row == table.ghost[0]:
            user = table.ghost[1]
            parts.append(f"{user.email}: {self.gone.get(str(user.id), 'gone')}")
        parts.append(f"sorted by {describe_sort(self.filter.sort)}")
        if table.fetching and cache.exact:
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
        self.refresh_rows()

    # ---- marks -------------------------------------------------------------------------

    def _marks_changed(self) -> None:
        self.table.redraw()
        self.refresh_bindings()
        self.update_status()

    def _mark(self, user: UserOut | None, on: bool) -> None:
        if user is None or str(user.id) in self.gone:
            return
        if on:
            self.marks.setdefault(str(user.id), user)
        else:
            self.marks.pop(str(user.id), None)

    def action_toggle_mark(self) -> None:
        table = self.table
        user = table.cursor_value
        if user is None:
            return
        self._mark(user, str(user.id) not in self.marks)
        self._anchor = table.cursor_row
        table.move_cursor(table.cursor_row + 1)
        self._marks_changed()

    def _mark_moving(self, step: int) -> None:
        table = self.table
        self._mark(table.cursor_value, True)
        table.move_cursor(table.cursor_row + step)
        self._mark(table.cursor_value, True)
        self._anchor = table.cursor_row
        self._marks_changed()

    def action_mark_down(self) -> None:
        self._mark_moving(1)

    def action_mark_up(self) -> None:
        self._mark_moving(-1)

    def action_mark_range(self) -> None:
        """Mark every row from the last mark made to the cursor (fetching rows not in
        the cache, in a worker)."""
        table = self.table
        if self._anchor is None:
            self.app.notify("Mark a row first (space), then V marks up to here.")
            return
        low, high = sorted((self._anchor, table.cursor_row))
        if high - low + 1 > MAX_RANGE:
            self.app.notify(f"At most {MAX_RANGE:,} rows at once.", severity="warning")
            return
        rows = [table.row(i) for i in range(low, high + 1)]
        if all(row is not None for row in rows):
            self._mark_all(rows)
            return
        source = table.source
        if table.ghost is not None and low > table.ghost[0]:
            low, high = low - 1, high - 1
        assert source is not None

        def job(_s) -> list[UserOut]:
            found: list[UserOut] = []
            fetch = Fetch(0, None, skip=low, limit=min(high - low + 1, source.page_size))
            while len(found) < high - low + 1:
                page, cursor = source.fetch(fetch)
                found += page
                if cursor is None or not page:
                    break
                left = high - low + 1 - len(found)
                fetch = Fetch(0, cursor, limit=min(left, source.page_size))
            return found[: high - low + 1]

        self.ctx.run(self, job, self._mark_all, group="mark-range")

    def _mark_all(self, rows: list[UserOut | None]) -> None:
        for row in rows:
            self._mark(row, True)
        self._anchor = self.table.cursor_row
        self._marks_changed()

    def action_clear_marks(self) -> None:
        self.marks.clear()
        self._anchor = None
        self._marks_changed()

    # ---- copy and go to ---------------------------------------------------------------

    def _copy(self, what: str, text: str, user: UserOut) -> None:
        self.app.copy_to_clipboard(text)
        self.app.notify(f"Copied the {what} of {user.email}: {text}")

    def action_copy_id(self) -> None:
        if user := self.current_user():
            self._copy("id", str(user.id), user)

    def action_copy_email(self) -> None:
        if user := self.current_user():
            self._copy("email", user.email, user)

    def action_goto(self) -> None:
        from usermgmt.tui.screens.goto import GotoScreen

        self.app.push_screen(GotoScreen(submit=self._find), self._found)

    def _find(self, form, ref: str) -> None:
        ctx = self.ctx
        self.ctx.run(
            form,
            lambda s: s.user_reads.find(ctx.actor, ref),
            form.dismiss,
            failed=form.refused,
            group="form",
        )

    def _found(self, user: UserOut | None) -> None:
        """Highlight the user if its row is here, and open it."""
        if user is None:
            return
        index = self.table.index_of(lambda row: row.id == user.id)
        if index is not None:
            self.table.move_cursor(index)
        self.open_detail(user)

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
        if action == "clear_marks":
            return bool(self.marks) and self.focused is self.table
        if action in MARK_ACTIONS:
            return self.focused is self.table
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
        yield SystemCommand(
            "Go to user", "By id, short id, email or username (:)", self.action_goto
        )
        if self.marks:
            yield SystemCommand(
                "Clear marks",
                f"Unmark {bulk.plural(len(self.marks))} (esc)",
                self.action_clear_marks,
            )
        if user := self.current_user():
            for binding in USER_ACTION_BINDINGS:
                if self.check_user_action(binding.action):
                    yield SystemCommand(
                        f"{binding.description}: {fmt.in_markup(user.email)}",
                        f"On the highlighted user ({binding.key})",
                        getattr(self, f"action_{binding.action}"),
                    )
