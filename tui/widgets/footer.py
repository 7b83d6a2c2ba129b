"""Textual's footer, showing only the keys that fit whole.

At 80 columns a screen has more keys than fit: Textual's footer cuts the last one in the
middle (``s Scal▏``). This one leaves out the keys that would not fit, whole, beside the
palette's; ``?`` and ``ctrl+p`` list every key of the screen.

It is composed again only when the keys it shows change, and keys that only go and come
back (``:`` and ``/`` while the prompt is open) are hidden and shown in place: Textual's
footer is rebuilt (some twenty widgets and their styles, a layout of the screen) at every
change of focus, and the prompt's ``/`` then delayed the first key typed into the filter
(bench/tui_table.py).
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


def _shown_keys(screen: Screen[Any]) -> tuple[Any, ...]:
    """What the footer shows of ``screen``'s bindings, as Footer.compose reads them."""
    palette = screen.app.COMMAND_PALETTE_BINDING
    return tuple(
        (binding.key, binding.action, binding.description, enabled, tooltip, binding.group)
        for key, (_, binding, enabled, tooltip) in screen.active_bindings.items()
        if binding.show or key == palette
    )


class FittingFooter(Footer):
    _keys_drawn: tuple[Any, ...] | None = None
    #: the keys last composed, when every one of them fitted (else None)
    _composed: tuple[Any, ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        keys = _shown_keys(screen)
        if self._bindings_ready and keys == self._keys_drawn:
            return  # the same keys: nothing to compose again
        if self._bindings_ready and self._show_only(keys):
            self._keys_drawn = keys
            return
        super().bindings_changed(screen)
        if self.app.app_focus and self.is_attached and screen is self.screen:
            self._keys_drawn = keys

    def _show_only(self, keys: tuple[Any, ...]) -> bool:
        """Keys among those composed, in their order (the prompt's ``:`` and ``/`` go while it
        is open, and come back): the others hidden in place, when all composed fitted."""
        composed = self._composed
        if composed is None or not self.is_attached:
            return False
        it = iter(composed)
        if not all(any(key == c for c in it) for key in keys):  # not a subsequence
            return False
        shown = {(k[0], k[1]) for k in keys}
        for footer_key in self.query(FooterKey):
            visible = (footer_key.key, footer_key.action) in shown
            if footer_key.display != visible:
                footer_key.display = visible
        return True

    def compose(self) -> ComposeResult:
        self._composed = None
        parts = list(super().compose())
        # + 1: the palette's key, docked right, may cover the last key's trailing blank
        budget = (self.size.width or self.app.size.width) + 1
        budget -= sum(
            _cells(p) for p in parts if isinstance(p, FooterKey) and p.has_class("-command-palette")
        )
        full = False
        kept = []
        for part in parts:
            if isinstance(part, FooterKey) and not part.has_class("-command-palette"):
                full = full or _cells(part) > budget
                if full:
                    continue  # the keys after it too: the order of the keys stays
                budget -= _cells(part)
            kept.append(part)
        if parts and not full:
            self._composed = _shown_keys(self.screen)
        yield from kept

    def on_resize(self) -> None:
        self.call_after_refresh(self.recompose)
