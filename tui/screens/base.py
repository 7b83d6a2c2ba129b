"""What every dashboard screen shares: top bar, error banner, prompt, footer, polling.

Polling follows dolphie: fetch in a worker, draw, then schedule the next fetch
with a one-shot timer, so two polls of one screen never overlap. A screen that
is not shown (under an opaque one, another view's) does not fetch and keeps no
timer; it fetches at once when it comes back. A screen whose every figure is a
record the workspace's watch reports (``WATCHED``) keeps no timer while the watch
is live: the app wakes it when a change is recorded (``refresh_soon``). Wakes
coalesce: several queued are one (``Stale.can_replace``, as toolong's messages),
and one that comes while a fetch runs is one more fetch after it, never a fetch
cancelled and started again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import UPDATE_PERIOD, Screen
from textual.timer import Timer
from textual.widgets import Input, Static

from .. import glyphs
from ..format import describe_error
from ..frames import FrameTimer
from ..widgets.footer import FittingFooter
from ..widgets.operations import OperationBar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ...services.api.health import DeploymentHealth
    from ...services.api.workspace import OperationHandle, Workspace
    from ..app import ModeldeckApp
    from ..widgets.command_line import CommandLine


SMALL_HEIGHT = 32  # rows: below this, notifications go above the footer, not over the table


class ModeldeckScreen(Screen[None]):
    """A view of the workspace. Subclasses give ``compose_body``, ``fetch`` and ``show``."""

    VIEW_NAME: ClassVar[str] = ""
    #: actions that change something: hidden and refused in read-only mode
    MUTATING: ClassVar[frozenset[str]] = frozenset()
    POLL_INTERVAL: ClassVar[float] = 2.0
    #: every figure shown is a record that takes a revision (the local workspace's
    #: changes): while the app's watch is live, fetched on its wakes, not on a timer
    WATCHED: ClassVar[bool] = False

    class Stale(Message):
        """The workspace changed: fetch again. Several queued are one."""

        bubble = False

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ModeldeckScreen.Stale)

    BINDINGS = [
        # priority: the prompt opens while the key is read, so what is typed right after
        # it (``/blu`` in one burst over SSH) goes to the prompt, not to the table
        Binding("colon", "command_mode", "Cmd", key_display=":", priority=True),
        Binding("slash", "filter_mode", "Filter", key_display="/", priority=True),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._poll_timer: Timer | None = None
        self._poll_generation = 0
        self._fetching = False  # a poll's fetch runs
        self._again = False  # woken while it ran: fetch once more after it
        self.last_error: BaseException | None = None
        self.loaded = False
        self._generation = 0  # the app's workspace_generation this screen shows
        self._frame_timer: FrameTimer | None = None

    @property
    def mdapp(self) -> ModeldeckApp:
        return self.app  # type: ignore[return-value]

    @property
    def workspace(self) -> Workspace:
        return self.mdapp.workspace

    @property
    def _update_timer(self) -> Timer:
        """The timer Textual's Screen draws its frames on (its own name, 8.2), made as its
        ``set_interval`` makes it, but a FrameTimer: no dead tick after a frame (frames.py)."""
        if self._frame_timer is None:
            timer = FrameTimer(
                self,
                UPDATE_PERIOD,
                name="screen_update",
                callback=self._on_timer_update,
                pause=True,
            )
            timer._start()
            self._timers.add(timer)
            self._frame_timer = timer
        return self._frame_timer

    @property
    def is_shown(self) -> bool:
        """On the terminal now: the top screen, or under screens that all let it show
        through. Textual's ``is_current`` also counts the screen right under an opaque one,
        whose redraw is then laid out and painted again through the top screen (the
        Metrics under the Logs: a full frame of the logs each metrics tick)."""
        stack = self.app.screen_stack
        if self not in stack:
            return False
        above = stack[stack.index(self) + 1 :]
        return all(screen.styles.background.a < 1 for screen in above)

    def on_answer(self, dialog: Screen[Any], act: Callable[[Any], object]) -> None:
        """Push ``dialog`` (a confirmation, a form); with its answer, ``act(answer)``, unless
        there is none (no, cancelled: False or None)."""

        def done(answer: Any) -> None:
            if answer is not None and answer is not False:
                act(answer)

        self.app.push_screen(dialog, done)

    def confirm_operation(
        self,
        dialog: Screen[bool],
        title: str,
        start: Callable[[], Awaitable[OperationHandle]],
    ) -> None:
        """Ask with ``dialog`` (a ConfirmScreen); on yes, start the long operation ``title``."""
        self.on_answer(dialog, lambda _: self.mdapp.run_operation(title, start))

    def unless_risky(
        self, risks: Sequence[DeploymentHealth], go: Callable[[], object], declined: str
    ) -> None:
        """``go()`` now when a traffic change has no ``risks`` (``health.traffic_risks_now``),
        else once ``risky_traffic_dialog(risks)`` is answered yes; any other answer changes
        nothing and says ``declined``."""
        if not risks:
            go()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                go()
            else:
                self.notify(declined, title="not applied")

        from .dialogs import risky_traffic_dialog  # dialogs: not before the first frame

        self.app.push_screen(risky_traffic_dialog(risks), answered)

    def form_operation(
        self,
        form: Screen[Any],
        verb: str,
        start: Callable[[Any], Awaitable[OperationHandle]],
    ) -> None:
        """Open ``form``; with the spec it returns (None: cancelled), start the long
        operation ``"{verb} {spec.name}"``."""
        self.on_answer(
            form, lambda spec: self.mdapp.run_operation(f"{verb} {spec.name}", lambda: start(spec))
        )

    # -- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(self.top_line(), id="topbar")
        yield Static("", id="error-banner")
        yield from self.compose_body()
        with Vertical(id="bottom"):
            yield Static("", id="notice")  # notifications on a small terminal (_toasts_inline)
            yield OperationBar()  # the prompt (CommandLine) is mounted here on first use
        yield FittingFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def top_line(self) -> str:
        app = self.mdapp
        ro = "  [b reverse] READ-ONLY [/]" if app.readonly else ""
        name, kind = app.workspace_label
        here = glyphs.current().focus
        return f"[b]modeldeck[/]  workspace [b]{name}[/] ({kind})  {here} [b]{self.title_text()}[/]{ro}"

    def title_text(self) -> str:
        return self.VIEW_NAME

    def default_focus(self) -> None:
        """Give focus back to the main widget after the prompt closes."""

    def unsaved(self) -> str | None:
        """What quitting now would lose, in words (None: nothing); the app asks first."""
        return None

    # -- read-only -------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("command_mode", "filter_mode") and isinstance(self.focused, Input):
            return False  # typed into the prompt (``:logs ep/blue``) or a field
        return not (action in self.MUTATING and self.mdapp.readonly)

    # -- polling ---------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._generation = self.mdapp.workspace_generation
        self.mdapp.refresh_operations()
        self.mdapp.after_first_frame(self._prepare_prompt)
        if self.mdapp.autoload:
            self.mdapp.after_first_frame(self._first_poll)  # the first frame first

    def _extend_compose(self, widgets: list[Any]) -> None:
        """Textual adds its toast rack here: on a small terminal a toast (up to 60 x 5
        cells) would cover the table, so there the notifications Textual keeps (and
        expires) are drawn on a line above the footer instead, and the table gives way."""
        super()._extend_compose(widgets)
        from textual.widgets._toast import ToastRack

        for rack in (w for w in widgets if type(w) is ToastRack):
            show_toasts = rack.show

            def show(notifications: Any, rack: Any = rack, show_toasts: Any = show_toasts) -> None:
                latest = list(notifications)[-1:]
                small = self.size.height < SMALL_HEIGHT
                self._show_notice(latest[0] if small and latest else None)
                if small:
                    rack.display = False
                else:
                    show_toasts(notifications)

            rack.show = show

    def _show_notice(self, notification: Any) -> None:
        line = self.query_one("#notice", Static)
        line.set_classes([] if notification is None else [f"-{notification.severity}"])
        if notification is not None:
            title = f"[b]{escape(notification.title)}[/]: " if notification.title else ""
            body = notification.message
            line.update(title + (body if notification.markup else escape(body)))

    def _first_poll(self) -> None:
        if self.is_attached and not self.loaded:
            self.poll_now()

    async def _prepare_prompt(self) -> None:
        """Mount the prompt right after the first frame: ``:`` then typing loses no key."""
        await self.command_line()

    def on_screen_resume(self) -> None:
        self.mdapp.refresh_operations()
        if self._generation != self.mdapp.workspace_generation:
            self.reset_workspace()
        elif self.loaded and self.mdapp.autoload:
            self.poll_now()

    def reset_workspace(self) -> None:
        """Another workspace was opened: drop what is shown, say which, fetch again."""
        self._generation = self.mdapp.workspace_generation
        self.loaded = False
        self.query_one("#topbar", Static).update(self.top_line())
        self.clear_data()
        if self.mdapp.autoload:
            self.poll_now()

    def clear_data(self) -> None:
        """Forget the data of the previous workspace (lists: an empty table)."""

    def on_unmount(self) -> None:
        self._stop_timer()

    def _stop_timer(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None

    def poll_now(self) -> None:
        """Fetch now (a stale fetch in flight is cancelled) and reschedule."""
        self._stop_timer()
        self._poll_generation += 1
        self._poll(self._poll_generation)

    def refresh_soon(self) -> None:
        """Fetch again soon (the workspace changed): wakes queued meanwhile are one, and a
        fetch running is not cancelled: one more follows it."""
        self.post_message(self.Stale())

    def on_modeldeck_screen_stale(self, _: Stale) -> None:
        if self._fetching:
            self._again = True
        else:
            self.poll_now()

    def refresh_interval(self) -> float:
        """Seconds to the next fetch (0: none): the screen's own cadence, none while the
        watch reports every change of what it shows, unless its last fetch failed (the watch
        may have told the change it missed: tried again on its cadence)."""
        if self.WATCHED and self.mdapp.watch_live and self.last_error is None:
            return 0.0
        return self.mdapp.poll_interval(self.POLL_INTERVAL)

    @work(exclusive=True, group="poll", exit_on_error=False)
    async def _poll(self, generation: int) -> None:
        cancelled = False
        self._again = False
        try:
            if self.is_shown or not self.loaded:
                self._fetching = True
                try:
                    data = await self.fetch()
                except asyncio.CancelledError:
                    cancelled = True
                    raise
                except Exception as exc:  # shown with message and fix, never a traceback
                    self.set_error(exc)
                else:
                    self.mdapp.connected()
                    self.set_error(None)
                    self.loaded = True
                    self.show(data)
        finally:
            if generation == self._poll_generation:  # not a newer poll's flag
                self._fetching = False
            if not cancelled and generation == self._poll_generation and self.is_attached:
                if self._again:  # woken while fetching: what was fetched may be stale
                    self.call_later(self._poll_again, generation)
                elif self.is_shown or not self.loaded:  # hidden: fetched on its return
                    interval = self.refresh_interval()
                    if interval > 0:
                        self._poll_timer = self.set_timer(interval, self._next_poll)

    def _poll_again(self, generation: int) -> None:
        if generation == self._poll_generation:  # no other poll started since
            self._next_poll()

    def _next_poll(self) -> None:
        self._poll_timer = None
        self._poll_generation += 1
        self._poll(self._poll_generation)

    async def fetch(self) -> Any:
        return None

    def show(self, data: Any) -> None:
        """Draw fetched data (called on the UI thread after each successful fetch)."""

    def show_data(self, data: Any) -> None:
        """Draw data given directly (``autoload=False``): what a successful fetch does."""
        self.set_error(None)
        self.loaded = True
        self.show(data)

    def set_error(self, exc: BaseException | None) -> None:
        self.last_error = exc
        banner = self.query_one("#error-banner", Static)
        if exc is None:
            if banner.has_class("-shown"):
                banner.remove_class("-shown")
                banner.update("")
            return
        if self.mdapp.control_plane_stopped(exc):
            banner.update(
                "[b]control plane stopped[/]: it does not answer (modeldeck daemon stop, or "
                "it exited), and is not started again behind your back.  [b]S[/] start it"
            )
        else:
            code = getattr(exc, "code", type(exc).__name__)
            banner.update(f"[b]{code}[/]: {describe_error(exc)}")
        banner.add_class("-shown")

    # -- prompt, filter, help ------------------------------------------------------------
    async def command_line(self) -> CommandLine:
        line = getattr(self, "_prompt", None)
        if line is None:
            from ..widgets.command_line import CommandLine  # after the first frame

            line = self._prompt = CommandLine(on_filter=self.apply_filter)
            await self.query_one("#bottom", Vertical).mount(line)
        return line

    async def action_command_mode(self) -> None:
        (await self.command_line()).open(":")

    async def action_filter_mode(self) -> None:
        (await self.command_line()).open("/", self.current_filter())

    def current_filter(self) -> str:
        return ""

    def apply_filter(self, pattern: str) -> None:
        """Filter the main view (case-insensitive regex, ``!`` inverts)."""

    def on_command_line_command(self, message: CommandLine.Command) -> None:
        if message.mode == "/":
            self.apply_filter(message.text)
        else:
            self.mdapp.run_command(message.text)

    def action_back(self) -> None:
        """Escape: clear the filter first (k9s), then go back to the previous screen."""
        if self.current_filter():
            self.apply_filter("")
        else:
            self.mdapp.action_back()

    def action_help(self) -> None:
        from .help import HelpScreen

        self.app.push_screen(HelpScreen(self))

    # -- helpers ---------------------------------------------------------------------------
    def actions_for_palette(self) -> list[tuple[str, str, str]]:
        """(title, help, action) for the command palette: the screen's own bindings."""
        return self.palette_actions(self.mdapp.readonly)

    @classmethod
    def palette_actions(cls, readonly: bool) -> list[tuple[str, str, str]]:
        """The same for a view not open now (the palette lists every view's actions)."""
        out, seen = [], set()
        for binding in cls.BINDINGS:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            action = binding.action
            name = action.split("(")[0]
            if (name in cls.MUTATING and readonly) or action in seen:
                continue  # read-only: not offered; an alias key (n for c): listed once
            seen.add(action)
            out.append((f"{cls.VIEW_NAME}: {binding.description}", binding.tooltip or "", action))
        return out
