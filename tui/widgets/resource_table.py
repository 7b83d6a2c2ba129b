"""A DataTable whose rows are updated in place by key (dolphie's way).

``sync(rows)`` takes every row the view has (key -> cells): only changed cells
are updated, stale rows removed, new ones added, and the table is sorted only
when the set of rows changed. ``set_filter`` applies the k9s ``/`` filter to the
same rows without asking the back end again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from ..format import RowFilter

Cells = tuple[Any, ...]
REBUILD_AT = 50  # rows in + out above which the table is rebuilt rather than edited


def _plain(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


class ResourceTable(DataTable[Any]):
    DEFAULT_CSS = "ResourceTable { height: 1fr; }"

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._column_spec = list(columns)  # (key, label)
        self._all: dict[str, Cells] = {}
        self._search: dict[str, str] = {}
        self._widths: list[int] = []
        self._shown: dict[str, Cells] = {}
        self.filter = RowFilter("")

    def on_mount(self) -> None:
        self._ensure_columns()
        if self._all:
            self._apply()

    def _ensure_columns(self) -> None:
        if not self.columns:
            for key, label in self._column_spec:
                self.add_column(label, key=key)

    @property
    def all_keys(self) -> list[str]:
        return list(self._all)

    @property
    def shown_keys(self) -> list[str]:
        return [str(row.key.value) for row in self.ordered_rows]

    def cells(self, key: str) -> Cells | None:
        return self._all.get(key)

    def selected_key(self) -> str | None:
        if not self.is_attached or not self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:
            return None
        return None if row_key.value is None else str(row_key.value)

    def sync(self, rows: Mapping[str, Cells]) -> None:
        self._all = dict(rows)
        plains = {k: [_plain(c) for c in v] for k, v in self._all.items()}
        self._search = {k: " ".join(v) for k, v in plains.items()}
        self._widths = [
            max([len(label), *(len(p[i]) for p in plains.values() if i < len(p))])
            for i, (_, label) in enumerate(self._column_spec)
        ]
        self._apply()

    def _measured(self) -> None:
        """Column widths from all rows (filtered out or not: they do not jump as you type),
        measured here from plain text in one pass; DataTable would render every new cell
        to measure it, which costs 100s of ms for a keystroke that brings back 1,000 rows."""
        self._new_rows.clear()  # nothing left for DataTable to measure
        for column, width in zip(self.ordered_columns, self._widths, strict=False):
            column.content_width = width
        self._require_update_dimensions = True

    def set_filter(self, pattern: str) -> RowFilter:
        self.filter = RowFilter(pattern)
        self._apply()
        return self.filter

    def _apply(self) -> None:
        if not self.is_attached:
            return  # applied when mounted
        self._ensure_columns()
        wanted = {k: v for k, v in self._all.items() if self.filter.matches(self._search[k])}
        stale = [k for k in self._shown if k not in wanted]
        fresh = [k for k in wanted if k not in self._shown]
        if len(stale) + len(fresh) > REBUILD_AT:
            self._rebuild(wanted)
            return
        for key in stale:
            self.remove_row(key)
            del self._shown[key]
        column_keys = [k for k, _ in self._column_spec]
        for key, cells in wanted.items():
            old = self._shown.get(key)
            if old is None:
                self.add_row(*cells, key=key)
            elif old != cells:
                for col, (a, b) in zip(column_keys, zip(old, cells, strict=False), strict=False):
                    if a != b:
                        self.update_cell(key, col, b)
            self._shown[key] = cells
        if fresh:
            self._measured()
        if (stale or fresh) and self.row_count > 1:
            self.sort(key=_sort_key)

    def _rebuild(self, wanted: dict[str, Cells]) -> None:
        """Many rows in or out (a filter keystroke on thousands): clear and add in order,
        which is linear, where removing rows one by one is quadratic."""
        keep = self.selected_key()
        self.clear()
        ordered = sorted(wanted.items(), key=lambda kv: _sort_key(kv[1]))
        for key, cells in ordered:
            self.add_row(*cells, key=key)
        self._shown = dict(ordered)
        self._measured()
        if keep is not None and keep in self._shown:
            self.move_cursor(row=self.get_row_index(keep), animate=False)


def _sort_key(row: Sequence[Any]) -> tuple[str, ...]:
    return tuple(_plain(c).lower() for c in row[:2])
