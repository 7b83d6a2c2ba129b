"""A percentage slider for one deployment's traffic share (or the mirror share).

Keyboard: left/right move 1%, shift+left/right 10%, home/end to the bounds.
Mouse: click or drag along the bar.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from .. import glyphs
from ..format import abbreviate, alarm, colour_for


class TrafficSlider(Widget, can_focus=True):
    """``name  ███████░░░░░  live 90 → 80 (-10)``"""

    BINDINGS = [
        Binding("left", "step(-1)", "-1%", show=False),
        Binding("right", "step(1)", "+1%", show=False),
        Binding("shift+left", "step(-10)", "-10%", show=False),
        Binding("shift+right", "step(10)", "+10%", show=False),
        Binding("home", "set_to(0)", "0%", show=False),
        Binding("end", "set_to(100)", "max", show=False),
    ]

    DEFAULT_CSS = """
    TrafficSlider { height: 1; width: 1fr; }
    TrafficSlider:focus { background: $boost; text-style: bold; }
    """

    value: reactive[int] = reactive(0)
    is_default: reactive[bool] = reactive(False)
    is_control: reactive[bool] = reactive(False)
    locked: reactive[bool] = reactive(False)

    class Changed(Message):
        """The user moved the slider (not sent for programmatic changes)."""

        def __init__(self, slider: TrafficSlider, value: int) -> None:
            super().__init__()
            self.slider = slider
            self.value = value

        @property
        def control(self) -> TrafficSlider:
            return self.slider

    def __init__(
        self,
        deployment: str,
        value: int = 0,
        *,
        live: int = 0,
        maximum: int = 100,
        label: str | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.deployment = deployment
        self.maximum = maximum
        self.live = live
        self.label = label or deployment
        self.set_reactive(TrafficSlider.value, max(0, min(maximum, value)))
        self._dragging = False

    # -- geometry --------------------------------------------------------------------------
    LABEL_WIDTH = 12  # the least a name gets; longer names get up to a third of the width
    TAIL_WIDTH = 16
    VALUE_WIDTH = 12  # " 100% (-100)": the health after it aligns
    #: the longest name among the sliders shown together (set by the screen: they align)
    names_width = 0
    #: the deployment's health after its share (set by the screen from
    #: ``services.api.health``): why it is not fit for traffic ("READY 0/1, Failed"), in
    #: words, else its figures now ("READY 1/1  err –  p95 –"); "" for none
    problem = ""
    figures = ""

    def _health(self) -> str:
        return self.problem or self.figures

    MIN_BAR = 20  # cells the bar keeps before a name gets more than LABEL_WIDTH

    def _tail(self) -> int:
        health = self._health()
        return self.VALUE_WIDTH + 2 + len(health) if health else self.TAIL_WIDTH

    def _label_width(self) -> int:
        """The names' width: the longest name, up to a third of the slider, as long as the
        bar keeps MIN_BAR cells (at 80 columns with the health figures: 16)."""
        wanted = max(self.LABEL_WIDTH, self.names_width, len(self.label))
        room = min(self.size.width // 3, self.size.width - 3 - self._tail() - self.MIN_BAR)
        return min(wanted, max(self.LABEL_WIDTH, room))

    def _bar_span(self) -> tuple[int, int]:
        start = 1 + self._label_width() + 2  # focus mark, name, default/control marks
        width = max(4, self.size.width - start - self._tail())
        return start, width

    def render(self) -> Text:
        g = glyphs.current()
        _start, width = self._bar_span()
        label_width = self._label_width()
        filled = round(self.value / 100 * width)
        cap = round(self.maximum / 100 * width)
        marks = ("*" if self.is_default else " ") + ("C" if self.is_control else " ")
        text = Text()
        # focus is a mark, not only a shade: told apart under NO_COLOR too
        text.append(g.focus if self.has_focus else " ", style="bold")
        text.append(f"{abbreviate(self.label, label_width):<{label_width}}", style="bold")
        text.append(marks, style="bold yellow")
        colour = "dim" if self.locked else colour_for(self.deployment)
        text.append(g.full * filled, style=colour)
        text.append(g.empty * max(0, cap - filled), style="dim")
        text.append(" " * max(0, width - max(cap, filled)))
        text.append(f" {self.value:3d}%")
        delta = self.value - self.live
        if delta:
            text.append(
                f" ({'+' if delta > 0 else ''}{delta})",
                style="bold green" if delta > 0 else "bold red",
            )
        if self._health():
            text.append(" " * max(0, self.VALUE_WIDTH - (text.cell_len - _start - width)))
            text.append(f"  {self._health()}", style=alarm() if self.problem else "dim")
        return text

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- changes -------------------------------------------------------------------------
    def _set_by_user(self, value: int) -> None:
        value = max(0, min(self.maximum, value))
        if value != self.value:
            self.value = value
            self.post_message(self.Changed(self, value))

    def action_step(self, delta: int) -> None:
        if not self.locked:
            self._set_by_user(self.value + delta)

    def action_set_to(self, value: int) -> None:
        if not self.locked:
            self._set_by_user(value)

    def _value_at(self, x: int) -> int:
        start, width = self._bar_span()
        return round((x - start) / max(1, width) * 100)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.focus()
        if self.locked:
            return
        self._dragging = True
        self.capture_mouse()
        self._set_by_user(self._value_at(event.x))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._dragging:
            self._set_by_user(self._value_at(event.x))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._dragging:
            self._dragging = False
            self.release_mouse()
