"""A text input that handles its own keys in the order they were typed.

Textual 8.2.8 (the newest release) runs an ``Input`` binding (``left``, ``home``,
``backspace``...) only after the key event has bubbled up to the app, while a character
is inserted by the input itself as it arrives: two keys read in one burst (``Left`` then
``8`` over SSH, on "5") come out as "58", not "85". Here the input runs the action bound
to a key as that key arrives, as a terminal's line editor does.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class OrderedInput(Input):
    async def _on_key(self, event: events.Key) -> None:
        bound = self._bindings.key_to_bindings.get(event.key)
        if bound and not event.is_printable:
            event.stop()
            event.prevent_default()
            await self.run_action(bound[0].action)
            return
        await super()._on_key(event)
