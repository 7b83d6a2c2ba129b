"""A text input that handles its own keys in the order they were typed.

Textual 8.2.8 (the newest release) runs an ``Input`` binding (``left``, ``home``,
``backspace``...) only after the key event has bubbled up to the app, while a character
is inserted by the input itself as it arrives: two keys read in one burst (``Left`` then
``8`` over SSH, on "5") come out as "58", not "85". Here the input runs the action bound
to a key as that key arrives, as a terminal's line editor does.

Nor does a key typed lay the whole screen out again: Input's scrollable width is its
text's, and Textual lays the screen out when it changes, at every key (the ``/`` filter
over 10,000 deployments, bench/tui_table.py); the width is set without (scrolling.py).
"""

from __future__ import annotations

from textual import events
from textual.geometry import Size
from textual.widgets import Input

from .scrolling import set_virtual_size


class OrderedInput(Input):
    async def _on_key(self, event: events.Key) -> None:
        bound = self._bindings.key_to_bindings.get(event.key)
        if bound and not event.is_printable:
            event.stop()
            event.prevent_default()
            await self.run_action(bound[0].action)
            return
        await super()._on_key(event)

    def _watch_value(self, value: str) -> None:
        set_virtual_size(self, Size(self.content_width, 1))  # then Input's is no change
        super()._watch_value(value)
