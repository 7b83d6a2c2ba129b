"""The k9s prompt: ``:`` jumps to a view, ``/`` filters the current one."""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Input

from .inputs import OrderedInput

COMMANDS = [
    "clusters",
    "models",
    "endpoints",
    "deployments",
    "metrics",
    "history",
    "logs ",
    "endpoint ",
    "traffic ",
    "keys ",
    "rollout ",
    "help",
    "theme dark",
    "theme light",
    "quit",
]


class CommandLine(OrderedInput):
    """Hidden until ``:`` or ``/``; Enter submits, Escape cancels."""

    DEFAULT_CSS = """
    CommandLine { dock: bottom; display: none; height: 1; padding: 0 1; margin-bottom: 1; }
    CommandLine.-active { display: block; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        # Tab completes (a shell's way), it does not move the focus and close the prompt
        Binding("tab", "complete", "Complete", show=False),
    ]

    class Command(Message):
        """Enter in the prompt: ``mode`` is ``:`` or ``/``."""

        def __init__(self, mode: str, text: str) -> None:
            super().__init__()
            self.mode = mode
            self.text = text

    def __init__(self, on_filter: Callable[[str], object] | None = None) -> None:
        super().__init__(
            id="command-line",
            suggester=SuggestFromList(COMMANDS, case_sensitive=False),
            compact=True,
        )
        self.mode = ":"
        self.can_focus = False  # only while open: never takes focus from the view
        #: the view's filter, applied as each key is typed after ``/``: called in the key's
        #: own turn, so the rows found are drawn in the frame that shows the key (a message
        #: to the screen, three queues away, let a frame with the key alone go first and
        #: the rows wait for the next: bench/tui_table.py)
        self.on_filter = on_filter

    def open(self, mode: str, value: str = "") -> None:
        self.mode = mode
        self.placeholder = (
            "command: clusters endpoints deployments models metrics logs NAME  (Esc: cancel)"
            if mode == ":"
            else "filter: regex, !regex inverts (Enter: keep, Esc: clear)"
        )
        self.value = value
        self.add_class("-active")
        self.can_focus = True
        # focused now, not after the queue (focus() defers): ``/blu`` typed in one burst
        # (a paste, a fast typist over SSH) lands in the prompt, not in the table
        self.screen.set_focus(self)

    def close(self) -> None:
        self.remove_class("-active")
        self.can_focus = False
        self.screen.set_focus(None)
        focus = getattr(self.screen, "default_focus", None)
        if callable(focus):
            focus()

    def action_complete(self) -> None:
        """Tab: take the command the suggester shows greyed (``:`` only: a filter is text)."""
        suggestion = getattr(self, "_suggestion", "")
        if self.mode == ":" and suggestion and suggestion != self.value:
            self.value = suggestion
            self.cursor_position = len(suggestion)

    def action_cancel(self) -> None:
        if self.mode == "/" and self.on_filter is not None:
            self.on_filter("")
        self.close()

    def _watch_value(self, value: str) -> None:
        super()._watch_value(value)
        if self.mode == "/" and self.has_class("-active") and self.on_filter is not None:
            self.on_filter(value)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Command(self.mode, event.value.strip()))
        self.close()

    def on_blur(self, event: events.Blur) -> None:
        if self.has_class("-active") and self.mode == ":":
            self.remove_class("-active")
            self.can_focus = False
