"""Logs of one deployment: replicas multiplexed, follow/pause, filter, wrap, save.

Lines arrive from ``Workspace.stream_logs`` in a worker and are drawn in batches
(at most ~10 redraws a second however fast they come, a burst's rest at ~50); the view
keeps a bounded number of lines. The status line's count is updated with each batch, in
the batch's frame: on a timer of its own (a quarter second) it was a frame of its own,
four more a second while lines stream, and a key pressed meanwhile waited for them
(bench/tui_keypress.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.timer import Timer
from textual.widgets import Static

from ...services.api.domain import LogLine
from ..widgets.log_view import LogView
from .base import ModeldeckScreen
from .dialogs import PromptScreen

FLUSH_SECONDS = 0.1
FLUSH_MAX_LINES = 2_000  # lines drawn per flush; a larger burst is spread over frames
FLUSH_BURST_SECONDS = 0.02


class LogsScreen(ModeldeckScreen):
    VIEW_NAME = "Logs"
    POLL_INTERVAL = 0.0
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("f", "toggle('follow')", "Follow/pause"),
        Binding("w", "toggle('wrap')", "Wrap"),
        Binding("t", "toggle('timestamps')", "Timestamps"),
        Binding("j", "toggle('pretty_json')", "JSON"),
        Binding("e", "traceback", "init() error"),
        Binding("s", "save", "Save"),
    ]

    def __init__(
        self, endpoint: str, deployment: str, *, tail: int = 500, max_lines: int = 20_000
    ) -> None:
        super().__init__()
        self.endpoint_name = endpoint
        self.deployment_name = deployment
        self.tail = tail
        self.max_lines = max_lines
        self._pending: list[LogLine] = []
        self._flush_timer: Timer | None = None
        self.stream_state = "connecting"
        self._status_text = ""  # as last shown: an unchanged status is not drawn again
        self._view: LogView | None = None
        self._status_line: Static | None = None

    def title_text(self) -> str:
        return f"Logs {self.endpoint_name}/{self.deployment_name}"

    def compose_body(self) -> ComposeResult:
        # kept: the status is updated with each batch, and a query walks the screen's DOM
        self._view = LogView(max_lines=self.max_lines, id="log-view")
        self._status_line = Static("", id="status-line")
        yield self._view
        yield self._status_line

    @property
    def view(self) -> LogView:
        """The log view composed (kept: a query walks the screen's DOM, once per batch)."""
        if self._view is None:
            raise NoMatches("the log view is not composed yet")
        return self._view

    def default_focus(self) -> None:
        self.view.focus()

    def on_mount(self) -> None:
        self.mdapp.refresh_operations()
        self.call_after_refresh(self._prepare_prompt)
        self.view.focus()
        self.loaded = True
        if self.mdapp.autoload:
            self._stream()
        else:
            self.stream_state = "not connected"
        self.update_status()

    def on_screen_resume(self) -> None:
        self.mdapp.refresh_operations()

    @work(exclusive=True, group="logs", exit_on_error=False)
    async def _stream(self) -> None:
        """Follow the log; on a failure show it and reconnect (without repeating the tail)."""
        tail = self.tail
        while True:
            try:
                self.stream_state = "connected"
                self.update_status()
                async for line in self.workspace.stream_logs(
                    self.endpoint_name, self.deployment_name, lines=tail, follow=True
                ):
                    self.feed(line)
                self.stream_state = "stream ended; reconnecting"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.set_error(exc)
                self.stream_state = "disconnected; retrying"
            else:
                self.set_error(None)
            self.update_status()
            tail = 0
            await asyncio.sleep(2.0)

    def feed(self, line: LogLine) -> None:
        """Queue one line; lines are drawn in batches."""
        self._pending.append(line)
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(FLUSH_SECONDS, self._flush)

    def feed_many(self, lines: list[LogLine]) -> None:
        self._pending.extend(lines)
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(FLUSH_SECONDS, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        if not self._pending:
            return
        pending = self._pending
        if len(pending) > self.max_lines:  # older ones would be dropped by the view anyway
            del pending[: len(pending) - self.max_lines]
        batch = pending[:FLUSH_MAX_LINES]
        del pending[:FLUSH_MAX_LINES]
        self.view.append_lines(batch)
        if pending:  # a burst: the rest in the next frames, so no frame waits long
            self._flush_timer = self.set_timer(FLUSH_BURST_SECONDS, self._flush)
        self.update_status()  # the count in the rows' frame (see the module's docstring)

    def update_status(self) -> None:
        view, status = self._view, self._status_line
        if view is None or status is None or not status.is_attached:
            return
        mode = "[green]following[/]" if view.follow else "[yellow]paused[/]"
        opts = [
            name
            for name, on in (
                ("wrap", view.wrap),
                ("timestamps", view.timestamps),
                ("json", view.pretty_json),
            )
            if on
        ]
        text = f"{mode}  {self.stream_state}  {view.line_count} lines (max {view.max_lines})"
        if view.filter:
            bad = "" if view.filter.valid else " (literal)"
            text += f"  filter [b]/{view.filter.pattern}[/]{bad}: {view.row_count} rows"
        if opts:
            text += "  " + " ".join(opts)
        if text != self._status_text:
            self._status_text = text
            status.update(text, layout=False)

    # -- actions ---------------------------------------------------------------------------
    def current_filter(self) -> str:
        return self.view.filter.pattern

    def apply_filter(self, pattern: str) -> None:
        self.view.set_filter(pattern)
        self.update_status()

    def action_toggle(self, option: str) -> None:
        view = self.view
        view.set_option(option, not getattr(view, option))
        self.update_status()

    def action_traceback(self) -> None:
        if self.view.jump_to_init_traceback():
            self.notify("jumped to the last init() traceback (follow paused: f resumes)")
        else:
            self.notify("no traceback in the lines kept here", severity="warning")
        self.update_status()

    def action_save(self) -> None:
        default = f"{self.endpoint_name}-{self.deployment_name}.log"

        def done(path: str | None) -> None:
            if not path:
                return
            try:
                target = Path(path).expanduser()
                target.write_text(self.view.plain_text())
            except OSError as exc:
                self.notify(
                    f"could not save to {path}: {exc.strerror}\nfix: choose a writable path",
                    severity="error",
                )
                return
            self.notify(f"saved {self.view.row_count} lines to {target}")

        self.app.push_screen(
            PromptScreen("Save the log", "File (the filtered lines):", default), done
        )
