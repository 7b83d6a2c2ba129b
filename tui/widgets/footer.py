"""Textual's footer, showing only the keys that fit whole.

At 80 columns a screen has more keys than fit: Textual's footer cuts the last one in the
middle (``s Scal▏``). This one leaves out the keys that would not fit, whole, beside the
palette's; ``?`` and ``ctrl+p`` list every key of the screen.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


def _cells(key: FooterKey) -> int:
    """The width Footer's CSS gives a key: `` key `` then ``description `` (and for the
    palette's key, docked right, its border and right padding)."""
    width = len(key.key_display) + 2 + (len(key.description) + 1 if key.description else 0)
    return width + 2 if key.has_class("-command-palette") else width


class FittingFooter(Footer):
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
