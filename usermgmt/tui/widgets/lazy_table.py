"""A table over a result of any size, fetched page by page as it scrolls.

The scrollbar spans the whole result (the count), but only the pages around
the viewport are fetched and only a bounded number are kept (see
``usermgmt.tui.paging.PageCache``). Rows not fetched yet show as ``…`` until
their page arrives. Fetches run in thread workers; their results come back
through ``call_from_thread`` and are dropped if the query changed meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from usermgmt.core.text import printable
from usermgmt.tui.paging import Fetch, PageCache, Source

MAX_IN_FLIGHT = 3  # fetches at once for the pages in view
MAX_ALL_IN_FLIGHT = 8  # including those for pages already scrolled away
SCROLL_FETCH_DELAY = 0.03  # coalesce the fetches of a fast scroll or a scrollbar drag


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int = 0  # fixed width in cells; 0 = takes a share of the rest
    ratio: int = 1
    min_width: int = 6
    sort: str | None = None  # the sort key this column orders by, if any


# (row, column key) -> (text, style class or None); style classes are
# "good", "warn", "bad", "muted", "accent", "gone".
CellRenderer = Callable[[Any, str], tuple[str, str | None]]
MARK = "●"  # in the gutter of a marked row


def fit(text: str, width: int) -> str:
    """Pad or cut ``text`` to exactly ``width`` cells, marking a cut with an ellipsis."""
    if width <= 0:
        return ""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    return set_cell_size(text, width)


class LazyTable(ScrollView, can_focus=True):
    """Rows of a :class:`Source`, lazily paged. One line per row, a fixed header line."""

    DEFAULT_CSS = """
    LazyTable {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        background: $surface;
        color: $foreground;
        & > .lazy-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .lazy-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .lazy-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .lazy-table--placeholder { color: $text-muted; }
        & > .lazy-table--empty { color: $text-muted; text-style: italic; }
        & > .lazy-table--good { color: $text-success; }
        & > .lazy-table--warn { color: $text-warning; }
        & > .lazy-table--bad { color: $text-error; }
        & > .lazy-table--muted { color: $text-muted; }
        & > .lazy-table--accent { color: $text-accent; }
        & > .lazy-table--gone { color: $text-muted; text-style: strike; }
        & > .lazy-table--mark { color: $text-accent; text-style: bold; }
    }
    """

    COMPONENT_CLASSES = {
        "lazy-table--header",
        "lazy-table--cursor",
        "lazy-table--placeholder",
        "lazy-table--empty",
        "lazy-table--good",
        "lazy-table--warn",
        "lazy-table--bad",
        "lazy-table--muted",
        "lazy-table--accent",
        "lazy-table--gone",
        "lazy-table--mark",
    }

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "select", "Open"),
    ]

    class Highlighted(Message):
        """The cursor moved, or the row under it arrived. ``row`` is None while loading."""

        def __init__(self, table: LazyTable, index: int, row: Any | None) -> None:
            super().__init__()
            self.table = table
            self.index = index
            self.row = row

        @property
        def control(self) -> LazyTable:
            return self.table

    class Selected(Highlighted):
        """Enter (or a click on the highlighted row) on a loaded row."""

    class SortRequested(Message):
        def __init__(self, table: LazyTable, column: Column) -> None:
            super().__init__()
            self.table = table
            self.column = column

    class Loaded(Message):
        """A page arrived (``page``) or the count did (``page`` None)."""

        def __init__(self, table: LazyTable, page: int | None) -> None:
            super().__init__()
            self.table = table
            self.page = page

    class LoadFailed(Message):
        """Fetching failed: a DomainError, or anything else (a bug) for the error modal."""

        def __init__(self, table: LazyTable, error: BaseException) -> None:
            super().__init__()
            self.table = table
            self.error = error

    def __init__(
        self,
        columns: list[Column],
        render_cell: CellRenderer,
        *,
        empty_text: str = "Nothing to show",
        max_pages: int = 12,
        is_marked: Callable[[Any], bool] | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = columns
        self.render_cell = render_cell
        self.empty_text = empty_text
        self.max_pages = max_pages
        # With ``is_marked`` the first cell of a row (its gutter) shows MARK for a marked row.
        self.is_marked = is_marked
        self._gutter = 2 if is_marked is not None else 1
        # A row that is no longer in the result but stays under the cursor until it moves
        # (a user deleted elsewhere): (its index, the row), shown at that index.
        self.ghost: tuple[int, Any] | None = None
        self.sort: str | None = None  # e.g. "-created_at", for the header arrow
        self.source: Source | None = None
        self.cache: PageCache = PageCache(max_pages=max_pages)
        self.cursor_row = 0
        self.paused = False  # no fetching (the database is away)
        self._generation = 0
        self._in_flight: set[int] = set()
        self._fetch_timer = None
        self._widths: list[int] = []
        self._layout_width = -1
        self._highlighted_key: tuple[int, int, Any] | None = None
        self._counting = False
        self._styles: dict[str, Style] = {}
        # Rendered rows by (index, under the cursor, loaded); cleared when data,
        # width, focus or styles change. A cursor move re-renders two rows, not all.
        self._strips: LRUCache[tuple[int, bool, bool], Strip] = LRUCache(512)
        self._strips_for: tuple[int, bool] = (-1, False)

    # ---- the data ----------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def row_count(self) -> int:
        return self.cache.height + (1 if self.ghost is not None else 0)

    def row(self, index: int) -> Any | None:
        """The row shown at ``index`` (the ghost, if any, counted), None if not fetched yet."""
        if self.ghost is not None:
            at, ghost = self.ghost
            if index == at:
                return ghost
            if index > at:
                index -= 1
        return self.cache.row(index)

    def index_of(self, key: Callable[[Any], bool]) -> int | None:
        """The index of the first row fetched for which ``key`` holds (the ghost excluded)."""
        cache = self.cache
        for page in sorted(p for p in cache.pages if cache.has_page(p)):
            for offset, row in enumerate(cache.pages[page]):
                if key(row):
                    index = page * cache.page_size + offset
                    if self.ghost is not None and index >= self.ghost[0]:
                        index += 1
                    return index
        return None

    def keep_ghost(self, row: Any) -> None:
        """Keep ``row`` (gone from the result) under the cursor, where it was, until the
        cursor moves off it."""
        self.ghost = (self.cursor_row, row)
        self._after_change()

    def _after_change(self) -> None:
        self._strips.clear()
        self._sync_size()
        self.refresh()
        self._post_highlighted()

    def redraw(self) -> None:
        """Render the rows again (their marks or what the cells show changed)."""
        self._strips.clear()
        self.refresh()

    @property
    def fetching(self) -> bool:
        """Pages are on their way. (Not Textual's ``loading``: a focused widget that is
        loading has its keys taken out of the footer and the bindings.)"""
        return bool(self._in_flight)

    @property
    def counting(self) -> bool:
        """The count of the current query is on its way."""
        return self._counting

    @property
    def cursor_value(self) -> Any | None:
        if self.row_count == 0:
            return None
        return self.row(self.cursor_row)

    def set_source(self, source: Source, *, sort: str | None = None) -> None:
        """Show another query: forget everything, back to the top, count and fetch."""
        self.source = source
        self.sort = sort
        self.ghost = None
        self.cache = PageCache(
            page_size=source.page_size,
            can_offset=source.can_offset,
            can_reverse=source.can_reverse,
            max_pages=self.max_pages,
            max_cursors=20_000 if source.can_offset else None,
        )
        self.cursor_row = 0
        self.scroll_to(y=0, animate=False, immediate=True)
        self._restart()

    def reload(self) -> None:
        """Fetch again what is on screen (after a change, or when the database is back)."""
        if self.source is None:
            return
        self.cache.invalidate()
        self._restart()

    def _restart(self) -> None:
        self._generation += 1
        self._strips.clear()
        self._in_flight.clear()
        self.workers.cancel_group(self, "lazy-table-pages")
        self._sync_size()
        self.refresh()
        if self.source is not None and self.source.can_offset:
            self._count()
        self._fetch_wanted()

    def _count(self) -> None:
        source, generation = self.source, self._generation
        assert source is not None
        self._counting = True

        def job() -> None:
            worker = get_current_worker()
            try:
                total = source.count()
            except Exception as exc:  # noqa: BLE001 - forwarded: the app maps DomainErrors
                self._report(worker, generation, exc)  # by its table, a bug to the modal
                return
            if not worker.is_cancelled:
                self.app.call_from_thread(self._counted, generation, total)

        self.run_worker(job, thread=True, group="lazy-table-count", exclusive=True)

    def _counted(self, generation: int, total: int | None) -> None:
        if generation != self._generation:
            return
        self._counting = False
        self.cache.set_total(total)
        self._sync_size()
        self.refresh()
        self.post_message(self.Loaded(self, None))
        self._fetch_wanted()

    def _report(self, worker, generation: int, error: BaseException) -> None:
        if worker.is_cancelled:
            return
        self.app.call_from_thread(self._failed, generation, error)

    def _failed(self, generation: int, error: BaseException) -> None:
        if generation == self._generation:
            self._counting = False
            self.post_message(self.LoadFailed(self, error))

    def _window(self) -> tuple[list[int], list[int]]:
        """Pages to have: (the visible ones and the cursor's, a page either side).

        A whole page of margin keeps a page down (or up) ahead of the fetches.

        Never more than the cache holds, so fetching the window cannot evict a
        page of the window (which would fetch it again, forever).
        """
        top = round(self.scroll_y)
        bottom = top + max(self._body_height() - 1, 0)
        cache = self.cache
        visible = list(cache.pages_for(top, bottom))
        if cache.height and (cursor_page := self.cursor_row // cache.page_size) not in visible:
            visible.append(cursor_page)
        margin = cache.page_size
        around = [p for p in cache.pages_for(top - margin, bottom + margin) if p not in visible]
        visible = visible[: cache.max_pages]
        return visible, around[: cache.max_pages - len(visible)]

    def _fetch_wanted(self) -> None:
        """Start fetching missing pages: visible ones first, the margin once they are in.

        Pages after a jump are fetched side by side, each skipping from the nearest
        known cursor: skipping ids is cheap, and waiting for one page to bring the
        next one's cursor would double the latency.
        """
        self._fetch_timer = None
        if self.source is None or self.paused:
            return
        visible, around = self._window()
        cache, in_flight = self.cache, self._in_flight
        candidates = visible if any(not cache.has_page(p) for p in visible) else around
        window = set(visible + around)
        for page in sorted(candidates):
            # Fetches for pages scrolled away finish on their own and take no slot of the
            # window, but a scrollbar drag must not start a query per position it passes.
            if len(in_flight & window) >= MAX_IN_FLIGHT or len(in_flight) >= MAX_ALL_IN_FLIGHT:
                break
            if page in in_flight or cache.has_page(page):
                continue
            plan = cache.plan(page)
            if plan is None:
                continue
            in_flight.add(page)
            self._fetch(plan)

    def _fetch_soon(self) -> None:
        if self._fetch_timer is None:
            self._fetch_timer = self.set_timer(SCROLL_FETCH_DELAY, self._fetch_wanted)

    def _fetch(self, plan: Fetch) -> None:
        source, generation, page = self.source, self._generation, plan.page
        assert source is not None

        def job() -> None:
            worker = get_current_worker()
            try:
                rows, next_cursor = source.fetch(plan)
            except Exception as exc:  # noqa: BLE001 - forwarded: the app maps DomainErrors
                self.app.call_from_thread(self._fetch_failed, generation, page, exc)
                return
            if not worker.is_cancelled:
                self.app.call_from_thread(self._stored, generation, plan, rows, next_cursor)

        self.run_worker(job, thread=True, group="lazy-table-pages")

    def _fetch_failed(self, generation: int, page: int, error: BaseException) -> None:
        if generation != self._generation:
            return
        self._in_flight.discard(page)
        self.post_message(self.LoadFailed(self, error))

    def _stored(self, generation: int, plan: Fetch, rows: list, next_cursor: str | None) -> None:
        if generation != self._generation:
            return
        page = plan.page
        self._in_flight.discard(page)
        self._strips.clear()
        visible, around = self._window()
        self.cache.store(
            page, rows, next_cursor, keep=frozenset(visible + around), reverse=plan.reverse
        )
        self._sync_size()
        if self.cursor_row >= self.row_count:
            self.cursor_row = max(self.row_count - 1, 0)
        self.refresh()
        self.post_message(self.Loaded(self, page))
        self._post_highlighted()
        self._fetch_wanted()

    def _sync_size(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.row_count + 1)

    # ---- cursor and keys -------------------------------------------------------------

    def _body_height(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def move_cursor(self, index: int) -> None:
        if self.ghost is not None and index != self.ghost[0]:
            at, self.ghost = self.ghost[0], None  # off the ghost: it goes
            self._strips.clear()
            self._sync_size()
            if index > at:
                index -= 1
        height = self.row_count
        index = max(0, min(index, height - 1)) if height else 0
        self.cursor_row = index
        top = round(self.scroll_y)
        body = self._body_height()
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + body:
            self.scroll_to(y=index - body + 1, animate=False, immediate=True)
        self.refresh()
        self._post_highlighted()
        self._fetch_wanted()

    def _post_highlighted(self) -> None:
        row = self.cursor_value
        key = (self._generation, self.cursor_row, id(row) if row is not None else None)
        if key != self._highlighted_key:
            self._highlighted_key = key
            self.post_message(self.Highlighted(self, self.cursor_row, row))

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - max(self._body_height() - 1, 1))

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + max(self._body_height() - 1, 1))

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self.row_count - 1)

    def action_select(self) -> None:
        row = self.cursor_value
        if row is not None:
            self.post_message(self.Selected(self, self.cursor_row, row))

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._fetch_soon()

    def on_mount(self) -> None:
        # Cells may show times relative to now ("5m ago"): render them afresh each minute.
        self.set_interval(60, self._rerender)

    def _rerender(self) -> None:
        self._strips.clear()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._sync_size()
        self._fetch_soon()

    def on_click(self, event: events.Click) -> None:
        """A header sorts; a row moves the cursor, and opens when already on it (or on a
        double click). The table handles its clicks alone: no text selection."""
        event.prevent_default()
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self._column_at(offset.x)
            if column is not None and column.sort:
                self.post_message(self.SortRequested(self, column))
            return
        index = round(self.scroll_y) + offset.y - 1
        if index >= self.row_count:
            return
        if index == self.cursor_row or event.chain > 1:
            self.move_cursor(index)
            self.action_select()
        else:
            self.move_cursor(index)

    def _column_at(self, x: int) -> Column | None:
        left = self._gutter
        for column, width in zip(self.columns, self._widths, strict=False):
            if left <= x < left + width + 1:
                return column
            left += width + 1
        return None

    # ---- rendering ------------------------------------------------------------------

    def _layout(self, width: int) -> list[int]:
        if width == self._layout_width:
            return self._widths
        fixed = sum(c.width for c in self.columns if c.width)
        flexible = [c for c in self.columns if not c.width]
        spare = max(width - self._gutter - len(self.columns) - fixed, 0)
        # Every flexible column gets its minimum first, then a share of what is left by
        # its ratio: the minimums are what a narrow terminal must still show.
        extra = max(spare - sum(c.min_width for c in flexible), 0)
        ratios = sum(c.ratio for c in flexible) or 1
        widths = []
        for column in self.columns:
            if column.width:
                widths.append(column.width)
            else:
                widths.append(column.min_width + extra * column.ratio // ratios)
        self._widths, self._layout_width = widths, width
        return widths

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._layout_width = -1
        self._styles.clear()
        self._strips.clear()

    def _style(self, name: str) -> Style:
        """A component's rich style, resolved once per style change (not once per cell)."""
        style = self._styles.get(name)
        if style is None:
            base = self.rich_style
            style = base if name == "base" else base + self.get_component_rich_style(name)
            self._styles[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if (width, self.has_focus) != self._strips_for:
            self._strips.clear()
            self._styles.clear()
            self._strips_for = (width, self.has_focus)
        if y == 0:
            return self._header(width)
        index = round(self.scroll_y) + y - 1
        height = self.row_count
        if height == 0 and y == 1 and not self._in_flight and self.cache.exact:
            style = self._style("lazy-table--empty")
            return Strip([Segment(fit(" " + self.empty_text, width), style)], width)
        if index >= height:
            return Strip.blank(width, self._style("base"))
        row = self.row(index)
        key = (index, index == self.cursor_row, row is not None)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._row(index, row, width)
        return strip

    def _header(self, width: int) -> Strip:
        style = self._style("lazy-table--header")
        segments = [Segment(" " * self._gutter, style)]
        for column, w in zip(self.columns, self._layout(width), strict=True):
            label = column.label
            if column.sort and self.sort and self.sort.lstrip("-") == column.sort:
                label += " ▼" if self.sort.startswith("-") else " ▲"
            segments.append(Segment(fit(label, w) + " ", style))
        return Strip(segments).adjust_cell_length(width, style)

    def _row(self, index: int, row: Any | None, width: int) -> Strip:
        cursor = index == self.cursor_row
        cursor_style = self._style("lazy-table--cursor") if cursor else None
        base = self._style("base")
        line_style = base + cursor_style if cursor_style else base
        segments = [Segment(" ", line_style)]
        if self.is_marked is not None:
            marked = row is not None and self.is_marked(row)
            mark_style = line_style + self._style("lazy-table--mark")
            segments = [Segment(MARK if marked else " ", mark_style), Segment(" ", line_style)]
        widths = self._layout(width)
        if row is None:
            placeholder = line_style + self._style("lazy-table--placeholder")
            segments.append(Segment(fit("…", widths[0]), placeholder))
            return Strip(segments).adjust_cell_length(width, line_style)
        for column, w in zip(self.columns, widths, strict=True):
            text, style_class = self.render_cell(row, column.key)
            if cursor:  # the cursor row is one colour (struck through if gone)
                gone = style_class == "gone"
                style = line_style + self._style("lazy-table--gone") if gone else line_style
            else:
                style = self._style(f"lazy-table--{style_class}") if style_class else base
            segments.append(Segment(fit(printable(text), w) + " ", style))
        return Strip(segments).adjust_cell_length(width, line_style)
