"""The scrollable size of a line-drawn widget (a ScrollView), set without a new layout.

Textual's ``virtual_size`` is a reactive that lays the whole screen out again when it
changes: every widget placed and drawn anew, where only this one's rows changed. The log
view's size changes with each batch of lines while they stream, the table's with each
key typed into its filter (bench/tui_keypress.py, bench/tui_table.py: a full layout was
most of those frames). Only a scrollbar that comes or goes changes the widget's gutter,
and so the layout; else the new size is set as Textual's ScrollView sets it on a resize.
"""

from __future__ import annotations

from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.widget import Widget


def set_virtual_size(view: ScrollView, size: Size) -> None:
    if size == view.virtual_size:
        return
    if not view.is_mounted or not view.container_size:
        view.virtual_size = size  # not laid out yet: the first layout takes it
        return
    shown = (view.show_horizontal_scrollbar, view.show_vertical_scrollbar)
    view.set_reactive(Widget.virtual_size, size)
    view._scroll_update(size)  # the scrollbars' sizes and positions, as a resize does
    if (view.show_horizontal_scrollbar, view.show_vertical_scrollbar) != shown:
        view.refresh(layout=True)
