"""A bounded, virtual log view: one row per visible line, no widget per line.

Holds at most ``max_lines`` log lines (a deque: memory stays bounded however long
it runs). Rows are derived incrementally from the lines (filter, wrap, pretty JSON),
and only the rows on screen are rendered (the Line API, as toolong does).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import deque
from collections.abc import Iterable

from rich.segment import Segment
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...services.api.domain import LogLine
from ..format import RowFilter, colour_for

MAX_ROWS_PER_LINE = 60
TRACEBACK = "Traceback (most recent call last)"
_INIT_FRAME = re.compile(r"\bin init\b")


class _Entry:
    __slots__ = ("line", "pieces", "seq")

    def __init__(self, seq: int, line: LogLine) -> None:
        self.seq = seq
        self.line = line
        self.pieces: list[str] | None = None  # rows of this entry for the current layout


class LogView(ScrollView, can_focus=True):
    """Log lines of one deployment, replicas multiplexed with a coloured prefix."""

    DEFAULT_CSS = """
    LogView { height: 1fr; background: $surface; }
    """

    BINDINGS = [
        Binding("up", "scroll_up", "Up", show=False),
        Binding("down", "scroll_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
    ]

    def __init__(self, max_lines: int = 20_000, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.max_lines = max_lines
        self._entries: deque[_Entry] = deque(maxlen=max_lines)
        self._rows: deque[tuple[_Entry, int]] = deque()
        self._seq = 0
        self._max_width = 0
        self.follow = True
        self.wrap = False
        self.timestamps = False
        self.pretty_json = False
        self.filter = RowFilter("")
        self.marked_seq: int | None = None
        self._strips: dict[tuple[int, int, int, int], Strip] = {}  # rendered rows, by entry

    # -- data ----------------------------------------------------------------------------
    @property
    def line_count(self) -> int:
        return len(self._entries)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    def append_lines(self, lines: Iterable[LogLine]) -> None:
        """Add lines (a batch); drop the oldest beyond ``max_lines``; redraw once."""
        added = False
        simple = not self.wrap and not self.pretty_json
        matches = self.filter.matches if self.filter else None
        entries, rows = self._entries, self._rows
        widest = self._max_width
        for line in lines:
            self._seq += 1
            entry = _Entry(self._seq, line)
            entries.append(entry)
            added = True
            if matches is not None and not matches(line.text):
                continue
            text = line.text
            if simple and "\n" not in text:  # one row; its pieces are made when drawn
                rows.append((entry, 0))
                if len(text) > widest:
                    widest = min(2000, len(text))
                continue
            for k, piece in enumerate(self._pieces(entry)):
                rows.append((entry, k))
                if len(piece) > widest:
                    widest = min(2000, len(piece))
        self._max_width = widest
        if not added:
            return
        oldest = entries[0].seq
        while rows and rows[0][0].seq < oldest:
            rows.popleft()
        self._update_size()
        if self.follow:
            self.scroll_end(animate=False, immediate=False, x_axis=False)
        self.refresh()

    def clear(self) -> None:
        self._strips.clear()
        self._entries.clear()
        self._rows.clear()
        self._max_width = 0
        self._update_size()
        self.refresh()

    def lines(self, *, filtered: bool = True) -> list[LogLine]:
        return [e.line for e in self._entries if not filtered or self.filter.matches(e.line.text)]

    def plain_text(self) -> str:
        """The filtered lines as saved to a file (prefix and timestamp included)."""
        return (
            "\n".join(
                self._head(e.line).plain + e.line.text
                for e in self._entries
                if self.filter.matches(e.line.text)
            )
            + "\n"
        )

    # -- layout ----------------------------------------------------------------------------
    def _head(self, line: LogLine) -> Text:
        head = Text()
        if self.timestamps:
            ms = int((line.ts % 1) * 1000)
            head.append(
                time.strftime("%H:%M:%S", time.localtime(line.ts)) + f".{ms:03d} ", style="dim"
            )
        if line.replica:  # none: the line as the service wrote it (Azure ML)
            head.append(f"{line.replica} ", style=colour_for(line.replica))
        return head

    def _pieces(self, entry: _Entry) -> list[str]:
        if entry.pieces is None:
            line = entry.line
            body = line.text
            if self.pretty_json and body.lstrip().startswith(("{", "[")):
                with contextlib.suppress(ValueError):
                    body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
            head_len = len(self._head(line).plain)
            texts = body.split("\n")
            pieces: list[str] = []
            width = max(10, self.scrollable_content_region.width - head_len) if self.wrap else 0
            for t in texts:
                if width and len(t) > width:
                    pieces.extend(t[i : i + width] for i in range(0, len(t), width))
                else:
                    pieces.append(t)
                if len(pieces) >= MAX_ROWS_PER_LINE:
                    break
            entry.pieces = pieces[:MAX_ROWS_PER_LINE]
        return entry.pieces

    def relayout(self) -> None:
        """Rebuild the rows (after a change of filter, wrap, pretty-print or width)."""
        keep = self._top_seq()
        self._strips.clear()
        self._rows.clear()
        self._max_width = 0
        for entry in self._entries:
            entry.pieces = None
            if self.filter.matches(entry.line.text):
                for k, piece in enumerate(self._pieces(entry)):
                    self._rows.append((entry, k))
                    self._max_width = max(self._max_width, min(2000, len(piece)))
        self._update_size()
        if self.follow:
            self.scroll_end(animate=False, immediate=False, x_axis=False)
        elif keep is not None:
            self.scroll_to_seq(keep)
        self.refresh()

    def _top_seq(self) -> int | None:
        y = int(self.scroll_offset.y)
        if 0 <= y < len(self._rows):
            return self._rows[y][0].seq
        return None

    def _update_size(self) -> None:
        extra = 30 if self.timestamps else 16
        width = 0 if self.wrap else self._max_width + extra
        self.virtual_size = Size(width, len(self._rows))

    def on_resize(self) -> None:
        if self.wrap:
            self.relayout()

    # -- options ---------------------------------------------------------------------------
    def set_filter(self, pattern: str) -> RowFilter:
        self.filter = RowFilter(pattern)
        self.relayout()
        return self.filter

    def set_option(self, name: str, value: bool) -> None:
        setattr(self, name, value)
        if name != "follow":
            self.relayout()
        elif value:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def scroll_to_seq(self, seq: int) -> bool:
        for i, (entry, k) in enumerate(self._rows):
            if entry.seq >= seq and k == 0:
                self.scroll_to(y=max(0, i - 1), animate=False, immediate=True)
                return True
        return False

    def jump_to_init_traceback(self) -> bool:
        """Scroll to the last traceback raised from ``init()`` (or the last traceback)."""
        entries = list(self._entries)
        last_any: _Entry | None = None
        for i in range(len(entries) - 1, -1, -1):
            entry = entries[i]
            if TRACEBACK not in entry.line.text:
                continue
            if last_any is None:
                last_any = entry
            window = entries[i : i + 40]
            if any(_INIT_FRAME.search(e.line.text) for e in window) or _INIT_FRAME.search(
                entry.line.text
            ):
                return self._mark(entry)
        return self._mark(last_any) if last_any else False

    def _mark(self, entry: _Entry) -> bool:
        self._strips.clear()
        self.follow = False
        self.marked_seq = entry.seq
        if not self.filter.matches(entry.line.text):
            self.filter = RowFilter("")
            self.relayout()
        found = self.scroll_to_seq(entry.seq)
        self.refresh()
        return found

    # -- rendering -----------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= len(self._rows):
            return Strip.blank(width, base)
        entry, k = self._rows[index]
        key = (entry.seq, k, int(scroll_x), width)
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        pieces = self._pieces(entry)
        piece = pieces[k] if k < len(pieces) else ""
        head = self._head(entry.line)
        text = Text(" " * len(head.plain)) if k else head
        style = (
            "red"
            if entry.line.stream == "stderr"
            else ("cyan" if entry.line.stream == "system" else "")
        )
        body = Text(piece, style=style)
        regex = self.filter.regex
        if regex is not None and not self.filter.invert:
            for m in regex.finditer(piece):
                if m.end() > m.start():
                    body.stylize("reverse bold", m.start(), m.end())
        if entry.seq == self.marked_seq:
            body.stylize("bold underline")
        text.append_text(body)
        segments = [
            Segment(s.text, base + s.style if s.style else base)
            for s in text.render(self.app.console)
        ]
        strip = Strip(segments).crop_extend(scroll_x, scroll_x + width, base)
        if len(self._strips) > 4000:
            self._strips.clear()
        self._strips[key] = strip
        return strip
