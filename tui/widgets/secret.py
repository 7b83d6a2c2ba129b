"""A secret (key or token) shown masked, revealed for a few seconds on demand.

Copy goes through the terminal clipboard (OSC 52), which works over SSH.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer
from textual.widget import Widget

from .. import glyphs

MASK = "•" * 24


class SecretField(Widget):
    DEFAULT_CSS = "SecretField { height: 1; width: 1fr; }"

    revealed: reactive[bool] = reactive(False)
    #: shown when there is no secret (none, or not read: read-only)
    empty_text = "(none)"

    def __init__(
        self, label: str, secret: str = "", *, reveal_seconds: float = 5.0, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.label = label
        self._secret = secret
        self.reveal_seconds = reveal_seconds
        self._timer: Timer | None = None

    @property
    def secret(self) -> str:
        return self._secret

    def set_secret(self, secret: str) -> None:
        if secret != self._secret:
            self._secret = secret
            self.refresh()

    def render(self) -> Text:
        text = Text(f"{self.label:<11}", style="bold")
        if not self._secret:
            text.append(self.empty_text, style="dim")
        elif self.revealed:
            text.append(self._secret, style="yellow")
            text.append(f"  (hides in {self.reveal_seconds:g}s)", style="dim")
        else:
            text.append(glyphs.current().bullet * len(MASK), style="dim")
        return text

    def reveal(self) -> None:
        """Show the secret; it hides itself again after ``reveal_seconds``."""
        self.revealed = True
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.reveal_seconds, self.hide)

    def hide(self) -> None:
        self.revealed = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def toggle(self) -> None:
        if self.revealed:
            self.hide()
        else:
            self.reveal()

    def copy(self) -> bool:
        """Copy to the terminal clipboard (OSC 52); the secret is never shown or logged."""
        if not self._secret:
            return False
        self.app.copy_to_clipboard(self._secret)
        return True
