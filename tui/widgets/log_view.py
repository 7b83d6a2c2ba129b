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

from rich.control import strip_control_codes
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...services.api.domain import LogLine
from ..format import RowFilter, colour_for
from .scrolling import set_virtual_size

MAX_ROWS_PER_LINE = 60
#: rendered rows kept (a few screens: scrolling back and forth, a redraw while paused). A
#: Strip is some ten objects; thousands of them kept made the garbage collector's full
#: passes, while lines stream, stall the app for 60+ ms (bench/tui_keypress.py)
STRIPS_KEPT = 400
TRACEBACK = "Traceback (most recent call last)"
_INIT_FRAME = re.compile(r"\bin init\b")


def _style(name: str | Style) -> Style:
    return name if isinstance(name, Style) else Style.parse(name)


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
        self._strips_style: Style | None = None  # the widget's style they were drawn with
        self._drawing: tuple[Style, int, int, int] | None = None  # see render_lines

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
        shown = len(rows)
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
            shown = -1  # the rows under a paused view moved up
        self._update_size()
        if self.follow:  # in this frame: not one frame with the rows, a second scrolled
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        elif int(self.scroll_offset.y) + self.scrollable_content_region.height <= shown:
            return  # paused over rows that stay: only the scrollbars change (they redraw)
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
        set_virtual_size(self, Size(width, len(self._rows)))  # no layout of the screen

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
    def render_lines(self, crop: Region) -> list[Strip]:
        """What every row of one drawing shares is read once (``rich_style`` walks the DOM:
        it was most of a row's cost); rows kept from another style (a theme) are dropped."""
        base = self.rich_style
        if base != self._strips_style:
            self._strips.clear()
            self._strips_style = base
        self._drawing = (base, self.scrollable_content_region.width, *self.scroll_offset)
        try:
            return super().render_lines(crop)
        finally:
            self._drawing = None

    def render_line(self, y: int) -> Strip:
        base, width, scroll_x, scroll_y = self._drawing or (
            self.rich_style,
            self.scrollable_content_region.width,
            *self.scroll_offset,
        )
        index = scroll_y + y
        if index >= len(self._rows):
            return Strip.blank(width, base)
        entry, k = self._rows[index]
        key = (entry.seq, k, int(scroll_x), width)
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        pieces = self._pieces(entry)
        piece = pieces[k] if k < len(pieces) else ""
        stream = entry.line.stream
        style = "red" if stream == "stderr" else ("cyan" if stream == "system" else "")
        regex = self.filter.regex
        if (regex is None or self.filter.invert) and entry.seq != self.marked_seq:
            segments = self._plain_segments(entry.line, k, piece, style, base)
        else:
            segments = self._marked_segments(entry, k, piece, style, base)
        strip = Strip(segments).crop_extend(scroll_x, scroll_x + width, base)
        if len(self._strips) > STRIPS_KEPT:
            self._strips.clear()
        self._strips[key] = strip
        return strip

    def _plain_segments(
        self, line: LogLine, k: int, piece: str, style: str, base: Style
    ) -> list[Segment]:
        """A row with nothing marked in it: its segments made directly, as ``Text.render``
        makes them (one per styled run, control codes removed), without a
        Text per row: the rows of each batch are drawn while lines stream."""
        head = self._head(line)
        plain = head.plain
        if k:  # a wrapped line's next rows: blank under the head
            runs = [(" " * len(plain), "")]
        else:
            runs = [(plain[span.start : span.end], span.style) for span in head.spans]
        runs.append((strip_control_codes(piece), style))
        if not any(run_style for _, run_style in runs):  # no styled run: one segment
            return [Segment("".join(text for text, _ in runs), base)]
        return [
            Segment(text, base + _style(run_style) if run_style else base)
            for text, run_style in runs
            if text
        ]

    def _marked_segments(
        self, entry: _Entry, k: int, piece: str, style: str, base: Style
    ) -> list[Segment]:
        """A row with filter matches highlighted, or the marked traceback underlined."""
        head = self._head(entry.line)
        text = Text(" " * len(head.plain)) if k else head
        body = Text(piece, style=style)
        regex = self.filter.regex
        if regex is not None and not self.filter.invert:
            for m in regex.finditer(piece):
                if m.end() > m.start():
                    body.stylize("reverse bold", m.start(), m.end())
        if entry.seq == self.marked_seq:
            body.stylize("bold underline")
        text.append_text(body)
        return [
            Segment(s.text, base + s.style if s.style else base)
            for s in text.render(self.app.console)
        ]
