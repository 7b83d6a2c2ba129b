"""A virtual table of resources: a fixed row store, a filtered view, only visible rows drawn.

``sync(rows)`` takes every row the view has (key -> cells); ``set_filter`` applies the
k9s ``/`` filter to the same rows without asking the back end again. Nothing is added to
or removed from a widget tree when rows come and go: the filter computes a list of keys
(one regex search per row, over text prepared at ``sync``) and the table draws only the
rows in view (k9s/toolong's way). A keystroke that hides 1,000 of 2,000 rows costs a list
comprehension and one frame, where DataTable would remove or add 1,000 rows. Column
widths come from all rows (filtered out or not), so columns do not jump as you type.
A ``sync`` that changes nothing redraws nothing (idle writes nothing to the terminal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .. import glyphs
from ..format import RowFilter
from .scrolling import set_virtual_size

Cells = tuple[Any, ...]
PAD = 1  # blank cells either side of a column, as DataTable draws them
MIN_FIT = 8  # a column is never squeezed below this to fit the terminal's width
ID_FIT = 10  # nor a column that names the row (the first two) below this


def _plain(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _text(cell: Any) -> Text:
    if isinstance(cell, Text):
        return cell
    if isinstance(cell, str):
        # markup, not emoji codes: a ":name:" in a cell stays as typed, and Rich's emoji
        # table (rich._emoji_codes, ~4 ms to load) stays out of the first frame's header
        return Text.from_markup(cell, emoji=False)
    return Text(str(cell))


def _sort_key(row: Sequence[Any]) -> tuple[str, ...]:
    return tuple(_plain(c).lower() for c in row[:2])


class ResourceTable(ScrollView, can_focus=True):
    """Rows of cells under a fixed header; a row cursor; filter and sync by key."""

    DEFAULT_CSS = """
    ResourceTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        &:focus { background-tint: $foreground 5%; }
        & > .resource-table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .resource-table--header { background: ansi_bright_blue; color: ansi_default; }
        & > .resource-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .resource-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"resource-table--header", "resource-table--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
    ]

    class RowHighlighted(Message):
        """The cursor moved to another row (``key`` is None when the table is empty)."""

        def __init__(self, table: ResourceTable, key: str | None, cursor_row: int) -> None:
            super().__init__()
            self.table = table
            self.key = key
            self.cursor_row = cursor_row

        @property
        def control(self) -> ResourceTable:
            return self.table

    class RowSelected(RowHighlighted):
        """Enter, or a click on the highlighted row."""

    def __init__(
        self, columns: Sequence[tuple[str, str]], *, order_by_key: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        #: rows in the order of their keys (a screen that keys them in the order it wants:
        #: History, newest first), else by their first two cells (names, then versions)
        self.order_by_key = order_by_key
        self._column_spec = list(columns)  # (key, label)
        self._column_index = {k: i for i, (k, _) in enumerate(self._column_spec)}
        self._all: dict[str, Cells] = {}
        self._search: dict[str, str] = {}
        self._order: list[str] = []  # every key, sorted
        self._shown: list[str] = []  # the keys that pass the filter, in order
        self._index: dict[str, int] = {}  # shown key -> row index
        self._widths: list[int] = [len(label) for _, label in self._column_spec]
        self._fitted: list[int] = list(self._widths)  # the widths drawn (fit to the screen)
        self._strips: dict[tuple[Any, ...], Strip] = {}
        self._strips_style: Style | None = None  # the widget's style they were drawn with
        self._drawing: tuple[Style, int, int, int] | None = None  # see render_lines
        self._cursor = 0
        self._highlighted: str | None = None
        self.filter = RowFilter("")

    def on_mount(self) -> None:
        self._apply()  # the header shows before any rows arrive

    # -- the row store -------------------------------------------------------------------
    @property
    def all_keys(self) -> list[str]:
        return list(self._all)

    @property
    def shown_keys(self) -> list[str]:
        return list(self._shown)

    @property
    def row_count(self) -> int:
        return len(self._shown)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def cells(self, key: str) -> Cells | None:
        return self._all.get(key)

    def get_cell(self, key: str, column: str) -> Any:
        return self._all[key][self._column_index[column]]

    def get_row_index(self, key: str) -> int:
        return self._index[key]

    def selected_key(self) -> str | None:
        if not self._shown:
            return None
        return self._shown[min(self._cursor, len(self._shown) - 1)]

    def sync(self, rows: Mapping[str, Cells]) -> None:
        rows = dict(rows)
        if rows == self._all:
            return  # nothing changed: nothing redrawn
        changed_set = rows.keys() != self._all.keys()
        self._all = rows
        plains = {k: [_plain(c) for c in v] for k, v in rows.items()}
        self._search = {k: " ".join(v).lower() for k, v in plains.items()}  # matches_lower
        self._widths = [
            max([len(label), *(len(p[i]) for p in plains.values() if i < len(p))])
            for i, (_, label) in enumerate(self._column_spec)
        ]
        # a cell that draws itself to a width says how narrow it can go (every traffic share)
        self._least = [
            max([0, *(getattr(r[i], "min_width", 0) for r in rows.values() if i < len(r))])
            for i in range(len(self._column_spec))
        ]
        if changed_set or not self._order:
            self._order = (
                sorted(rows)
                if self.order_by_key
                else sorted(rows, key=lambda k: _sort_key(rows[k]))
            )
        self._strips.clear()
        self._apply()

    def set_filter(self, pattern: str) -> RowFilter:
        self.filter = RowFilter(pattern)
        self._apply()
        return self.filter

    def _apply(self) -> None:
        keep = self._highlighted
        matches, search = self.filter.matches_lower, self._search
        if self.filter:
            self._shown = [k for k in self._order if matches(search[k])]
        else:
            self._shown = list(self._order)
        self._index = {k: i for i, k in enumerate(self._shown)}
        if keep is not None and keep in self._index:
            self._cursor = self._index[keep]
        else:
            self._cursor = max(0, min(self._cursor, len(self._shown) - 1))
        self._fit()
        self._scroll_cursor_into_view()
        self._highlight()
        self.refresh()

    @staticmethod
    def _total_width(widths: list[int]) -> int:
        return sum(w + 2 * PAD for w in widths) - (PAD if widths else 0)

    def _fit(self) -> None:
        """Squeeze the widest columns (their text ends in …) until the table fits the
        width it has: at 80 columns no horizontal scrollbar eats a row."""
        widths = list(self._widths)
        available = 0
        if self.is_attached and self.size.width:
            available = self.size.width - self.styles.gutter.width
            if len(self._shown) + 1 > self.size.height:  # the vertical scrollbar shows
                available -= self.styles.scrollbar_size_vertical
        total = self._total_width(widths)
        # the columns after the first two squeeze first, down to a floor; then the two that
        # name the row (cut in the middle: the ends tell names apart) down to ID_FIT
        least = getattr(self, "_least", [0] * len(widths))
        floors = [
            max(MIN_FIT if i > 1 else ID_FIT, len(label), least[i])
            for i, (_, label) in enumerate(self._column_spec)
        ]
        for squeezable in (range(2, len(widths)), range(min(2, len(widths)))):
            while available and total > available and squeezable:
                i = max(squeezable, key=lambda j: widths[j] - floors[j])
                if widths[i] <= floors[i]:
                    break
                widths[i] -= 1
                total -= 1
        if widths != self._fitted:
            self._fitted = widths
            self._strips.clear()
        set_virtual_size(self, Size(total, len(self._shown) + 1))  # no layout of the screen

    # -- the cursor ----------------------------------------------------------------------
    def move_cursor(self, *, row: int | None = None, animate: bool = False, **_: Any) -> None:
        if row is None or not self._shown:
            return
        self._cursor = max(0, min(row, len(self._shown) - 1))
        self._scroll_cursor_into_view()
        self._highlight()
        self.refresh()

    def _highlight(self) -> None:
        key = self.selected_key()
        if key != self._highlighted:
            self._highlighted = key
            self.post_message(self.RowHighlighted(self, key, self._cursor))

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_cursor_into_view(self) -> None:
        if not self.is_attached:
            return
        page = self._page()
        top = int(self.scroll_y)
        target = top
        if self._cursor < top:
            target = self._cursor
        elif self._cursor >= top + page:
            target = self._cursor - page + 1
        target = max(0, min(target, len(self._shown) + 1 - page - 1))
        if target != top:
            # set directly: scroll_to() refuses while the scrollbar is not laid out yet
            self.scroll_target_y = self.scroll_y = target

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self._cursor - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(row=self._cursor + self._page())

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self._shown) - 1)

    def action_select_cursor(self) -> None:
        key = self.selected_key()
        if key is not None:
            self.post_message(self.RowSelected(self, key, self._cursor))

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        row = int(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self._shown):
            if row == self._cursor:
                self.action_select_cursor()
            else:
                self.move_cursor(row=row)

    def on_resize(self) -> None:
        self._strips.clear()
        self._fit()
        self._scroll_cursor_into_view()

    def on_focus(self) -> None:
        self._strips.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._strips.clear()
        self.refresh()

    # -- drawing -------------------------------------------------------------------------
    def _row_text(self, cells: Sequence[Any]) -> Text:
        out = Text(no_wrap=True, end="")
        last = len(self._fitted) - 1
        mark = glyphs.current().ellipsis
        for i, width in enumerate(self._fitted):
            raw = cells[i] if i < len(cells) else ""
            # a cell that draws itself to a width (a traffic bar keeps every share)
            cell = raw.fit_to(width) if hasattr(raw, "fit_to") else _text(raw).copy()
            cell.no_wrap = True
            if mark != "…" and cell.cell_len > width:  # ASCII: Rich's ellipsis is "…"
                cell.truncate(max(0, width - len(mark)))
                cell.append(mark)
            cell.truncate(width, overflow="ellipsis", pad=True)
            out.append(" " * PAD)
            out.append_text(cell)
            if i < last:  # the last column needs no gap after it: one more column fits at 80
                out.append(" " * PAD)
        return out

    def _strip(
        self, text: Text, style: Style, scroll_x: int, width: int, over: Style | None = None
    ) -> Strip:
        segments = []
        for s in text.render(self.app.console):
            if s.text == "\n":
                continue
            seg_style = style + s.style if s.style else style
            segments.append(Segment(s.text, seg_style + over if over else seg_style))
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, style)

    def render_lines(self, crop: Region) -> list[Strip]:
        """What every row of one drawing shares is read once (``rich_style`` walks the DOM:
        a third of a row's cost); rows kept from another style (a theme) are dropped."""
        base = self.rich_style
        if base != self._strips_style:
            self._strips.clear()
            self._strips_style = base
        scroll_x, scroll_y = (int(v) for v in self.scroll_offset)
        self._drawing = (base, self.scrollable_content_region.width, scroll_x, scroll_y)
        try:
            return super().render_lines(crop)
        finally:
            self._drawing = None

    def render_line(self, y: int) -> Strip:
        if self._drawing is not None:
            base, width, scroll_x, scroll_y = self._drawing
        else:
            scroll_x, scroll_y = (int(v) for v in self.scroll_offset)
            width = self.scrollable_content_region.width
            base = self.rich_style
        if y == 0:
            key: tuple[Any, ...] = ("header", scroll_x, width, self.has_focus)
            cached = self._strips.get(key)
            if cached is None:
                header = self.get_component_rich_style("resource-table--header")
                labels = [label for _, label in self._column_spec]
                cached = self._strip(self._row_text(labels), base + header, scroll_x, width)
                self._strips[key] = cached
            return cached
        index = scroll_y + y - 1
        if index >= len(self._shown):
            return Strip.blank(width, base)
        row_key = self._shown[index]
        is_cursor = index == self._cursor
        key = (row_key, is_cursor, is_cursor and self.has_focus, scroll_x, width)
        cached = self._strips.get(key)
        if cached is None:
            over = None
            if is_cursor:
                over = self.get_component_rich_style("resource-table--cursor")
            text = self._row_text(self._all[row_key])
            cached = self._strip(text, base, scroll_x, width, over)
            if len(self._strips) > 2000:
                self._strips.clear()
            self._strips[key] = cached
        return cached
