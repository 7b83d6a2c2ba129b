"""The progress bar of long operations in flight (fed from ``OperationHandle.watch()``)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static


@dataclass
class OperationState:
    title: str
    progress: float = 0.0  # 0..1
    message: str = ""


class OperationBar(Horizontal):
    """Shows the most recent operation in flight; hidden when there is none (styles/app.tcss)."""

    def compose(self) -> ComposeResult:
        yield Static("", id="op-label")  # the progress bar is mounted on first use (fast start)

    def show_states(self, states: list[OperationState]) -> None:
        if not states:
            self.remove_class("-busy")
            return
        from textual.widgets import ProgressBar

        if not self.query("#op-progress"):
            self.mount(ProgressBar(total=100, show_eta=False, id="op-progress"))
        self.add_class("-busy")
        state = states[-1]
        more = f" (+{len(states) - 1} more)" if len(states) > 1 else ""
        self.query_one("#op-label", Static).update(
            f"{state.title}: {state.message or 'working'}{more}"
        )
        self.call_after_refresh(self._set_progress, round(state.progress * 100))

    def _set_progress(self, value: int) -> None:
        from textual.widgets import ProgressBar

        for bar in self.query(ProgressBar):
            bar.update(progress=value)
