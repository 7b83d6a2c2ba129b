"""A list view: one ResourceTable, polled, filtered with ``/``."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.lazy import Lazy
from textual.widgets import Static

from .. import glyphs
from ..widgets.resource_table import Cells, ResourceTable
from .base import ModeldeckScreen


class ResourceListScreen(ModeldeckScreen):
    COLUMNS: ClassVar[list[tuple[str, str]]] = []
    EMPTY_TEXT: ClassVar[str] = "nothing here yet"
    NOUN: ClassVar[str] = ""  # what a row is, plural ("deployments"); VIEW_NAME by default
    #: rows in the order of their keys (see ResourceTable), not sorted by name
    ORDER_BY_KEY: ClassVar[bool] = False

    def compose_body(self) -> ComposeResult:
        # the table is built with the screen, mounted right after the first frame (fast start)
        self._table = ResourceTable(self.COLUMNS, order_by_key=self.ORDER_BY_KEY, id="table")
        yield Lazy(self._table)
        yield Static("", id="status-line")

    @property
    def table(self) -> ResourceTable:
        return self._table

    def default_focus(self) -> None:
        if self.table.is_mounted:
            self.table.focus()

    def on_mount(self) -> None:
        super().on_mount()
        self.call_after_refresh(self._focus_table)
        self.update_status()

    def _focus_table(self) -> None:
        if self.focused is not None and self.focused is not self.table:
            return  # the user got there first (the prompt, say): do not take focus back
        if self.table.is_mounted:
            self.table.focus()
        else:
            self.call_after_refresh(self._focus_table)

    def clear_data(self) -> None:
        self.table.sync({})
        self.update_status()

    def sync_rows(self, rows: dict[str, Cells]) -> None:
        self.table.sync(rows)
        self.update_status()

    def update_status(self) -> None:
        table = self.table
        total = len(table.all_keys)
        shown = table.row_count
        if not self.loaded and self.last_error is None:
            text = f"[dim]loading{glyphs.current().ellipsis}[/]"
        elif total == 0:
            text = f"[dim]{self.EMPTY_TEXT}[/]"
        elif table.filter:
            bad = "" if table.filter.valid else " (not a valid regex: matched literally)"
            text = f"filter [b]/{table.filter.pattern}[/]: {shown} of {total}{bad}"
        else:
            detail = self.row_detail(table.selected_key())
            noun = self.NOUN or self.VIEW_NAME.lower()
            if total == 1:
                noun = noun.removesuffix("s")
            text = detail or f"[dim]{total} {noun}[/]"
        if text != getattr(self, "_status_text", None):  # idle: nothing redrawn, nothing written
            self._status_text = text
            self.query_one("#status-line", Static).update(text, layout=False)

    def row_detail(self, key: str | None) -> str | None:
        """A line about the highlighted row for the status line (its full error, say)."""
        return None

    def on_resource_table_row_highlighted(self, event: ResourceTable.RowHighlighted) -> None:
        self.update_status()

    def current_filter(self) -> str:
        return self.table.filter.pattern

    def apply_filter(self, pattern: str) -> None:
        self.table.set_filter(pattern)
        self.update_status()

    def set_error(self, exc: BaseException | None) -> None:
        super().set_error(exc)
        if self.is_mounted:
            self.update_status()

    def on_resource_table_row_selected(self, event: ResourceTable.RowSelected) -> None:
        event.stop()
        opener = getattr(self, "action_open", None)
        if callable(opener):
            opener()

    def selected(self) -> str | None:
        return self.table.selected_key()

    def need_selection(self) -> str | None:
        key = self.selected()
        if key is None:
            self.notify("select a row first", severity="warning")
        return key
