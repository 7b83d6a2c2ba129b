"""Textual's footer, showing only the keys that fit whole.

At 80 columns a screen has more keys than fit: Textual's footer cuts the last one in the
middle (``s Scal▏``). This one leaves out the keys that would not fit, whole, beside the
palette's; ``?`` and ``ctrl+p`` list every key of the screen.

It is composed again only when the keys it shows change: Textual's footer is rebuilt
(some twenty widgets, and a layout of the screen) at every change of focus, the prompt's
``/`` and Esc included, though the prompt's keys are not shown (bench/tui_table.py: it
delayed the first key typed into the filter).
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


def _cells(key: FooterKey) -> int:
    """The width Footer's CSS gives a key: `` key `` then ``description `` (and for the
    palette's key, docked right, its border and right padding)."""
    width = len(key.key_display) + 2 + (len(key.description) + 1 if key.description else 0)
    return width + 2 if key.has_class("-command-palette") else width


class FittingFooter(Footer):
    _keys_drawn: tuple[Any, ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        palette = self.app.COMMAND_PALETTE_BINDING
        keys = tuple(
            (binding.key, binding.action, binding.description, enabled, tooltip, binding.group)
            for key, (_, binding, enabled, tooltip) in screen.active_bindings.items()
            if binding.show or key == palette
        )
        if self._bindings_ready and keys == self._keys_drawn:
            return  # the same keys: nothing to compose again
        super().bindings_changed(screen)
        if self.app.app_focus and self.is_attached and screen is self.screen:
            self._keys_drawn = keys

    def compose(self) -> ComposeResult:
        parts = list(super().compose())
        # + 1: the palette's key, docked right, may cover the last key's trailing blank
        budget = (self.size.width or self.app.size.width) + 1
        budget -= sum(
            _cells(p) for p in parts if isinstance(p, FooterKey) and p.has_class("-command-palette")
        )
        full = False
        for part in parts:
            if isinstance(part, FooterKey) and not part.has_class("-command-palette"):
                full = full or _cells(part) > budget
                if full:
                    continue  # the keys after it too: the order of the keys stays
                budget -= _cells(part)
            yield part

    def on_resize(self) -> None:
        self.call_after_refresh(self.recompose)
