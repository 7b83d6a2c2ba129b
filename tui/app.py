"""The modeldeck dashboard: a Textual app over the async Workspace API.

``run_app()`` is what ``modeldeck`` (no arguments) and ``modeldeck ui`` call.
Screens are imported lazily (the first frame comes fast); every Workspace call
runs in a worker; long operations show a progress bar and end in a notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from . import glyphs
from .css import css_path
from .format import describe_error
from .widgets.operations import OperationBar, OperationState

if TYPE_CHECKING:
    from ..services.api.workspace import OperationHandle, Workspace
    from .rollout_news import RolloutToasts
    from .screens.base import ModeldeckScreen


GC_GEN0 = 20_000  # allocations between young collections (Python's default: 700)

#: top-level views: mode name -> (module, class), imported on first use
VIEWS: dict[str, tuple[str, str]] = {
    "endpoints": ("endpoints", "EndpointsScreen"),
    "deployments": ("deployments", "DeploymentsScreen"),
    "clusters": ("clusters", "ClustersScreen"),
    "models": ("models", "ModelsScreen"),
    "metrics": ("metrics", "MetricsScreen"),
}


def _view_factory(module: str, cls: str) -> Callable[[], Screen[Any]]:
    def make() -> Screen[Any]:
        import importlib

        mod = importlib.import_module(f"modeldeck.tui.screens.{module}")
        screen: Screen[Any] = getattr(mod, cls)()
        _styles_current(screen)
        return screen

    return make


def _styles_current(screen: Screen[Any]) -> None:
    """Textual (8.2, App._init_mode) refreshes the whole CSS for a mode's first screen, which
    has seen no CSS update yet (``_css_update_count`` -1): every stylesheet parsed again
    with a fresh cache, which the next widget's CSS then parses a third time. While the
    app's CSS is as its stylesheet was built (no theme set since: count 0) that parse gives
    the same rules, and the screen is styled as it is registered; so the screen is marked
    up to date. Profile of the first frame (bench/tui_cold_start.py's app, traced):
    app.tcss and Textual's App, Screen and Widget CSS parsed 3 times, 2 of them here."""
    app = screen.app
    if app._css_update_count == 0:
        screen._css_update_count = 0


def _commands_provider() -> type[Any]:
    from .commands import ModeldeckCommands

    return ModeldeckCommands


class ModeldeckApp(App[None]):
    """The dashboard. ``workspace`` is any :class:`Workspace`; ``readonly`` hides every mutation."""

    TITLE = "modeldeck"
    CSS_PATH = [css_path("app.tcss")]
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = App.COMMANDS | {_commands_provider}
    MODES = {name: _view_factory(*where) for name, where in VIEWS.items()}
    DEFAULT_VIEW = "endpoints"

    BINDINGS = [
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("q", "quit", "Quit", show=False),
        Binding("escape", "back", "Back", show=False),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
        Binding("1", "view('endpoints')", "Endpoints", show=False),
        Binding("2", "view('deployments')", "Deployments", show=False),
        Binding("3", "view('clusters')", "Clusters", show=False),
        Binding("4", "view('models')", "Models", show=False),
        Binding("5", "view('metrics')", "Metrics", show=False),
        Binding("S", "start_control_plane", "Start control plane", show=False),
    ]

    def __init__(
        self,
        workspace: Workspace | Callable[[], Workspace],
        readonly: bool = False,
        *,
        poll_scale: float = 1.0,
        initial_view: str | None = None,
        theme: str | None = None,
        autoload: bool = True,
        workspace_label: tuple[str, str] | None = None,
    ) -> None:
        self.initial_view = initial_view or self.DEFAULT_VIEW
        # the first screen is the initial view itself (no blank default screen to draw first)
        self.DEFAULT_MODE = self.initial_view  # type: ignore[misc]
        super().__init__()
        glyphs.configure(glyphs.choose(mono=self.no_color))  # TERM, LANG, NO_COLOR
        if not glyphs.current().box:  # ASCII only: the CSS's box-drawing borders too
            self.add_class("-ascii")
        self._workspace: Workspace | None = None
        self._workspace_factory: Callable[[], Workspace] | None = None
        if callable(workspace) and not hasattr(workspace, "list_endpoints"):
            self._workspace_factory = workspace  # opened on first use, after the first frame
        else:
            self._workspace = workspace  # type: ignore[assignment]
        self.workspace_label = workspace_label or (
            (self._workspace.name, self._workspace.kind)
            if self._workspace is not None
            else ("", "")
        )
        self.readonly = readonly
        self.poll_scale = poll_scale
        #: False: screens do not call the workspace on their own; data is fed to ``show()``
        #: (snapshot tests and widget-level benchmarks)
        self.autoload = autoload
        #: call id -> what its progress bar shows (one bar per call, even two of one title)
        self.operations: dict[str, OperationState] = {}
        self._after_first_frame: list[Callable[[], Any]] = []
        chosen = theme or os.environ.get("MODELDECK_THEME", "dark")
        if chosen == "light":  # textual-dark is the default: setting it again re-parses the CSS
            self.theme = "textual-light"

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            assert self._workspace_factory is not None
            self._workspace = self._workspace_factory()
            self.workspace_label = (self._workspace.name, self._workspace.kind)
            for topbar in self.screen.query("#topbar"):
                topbar.update(self.screen.top_line())  # type: ignore[attr-defined]
        return self._workspace

    # -- lifecycle ---------------------------------------------------------------------------
    #: set by run_app (the program): tune the process's garbage collector (not in tests)
    tune_gc = False

    _first_frame_drawn = False

    def after_first_frame(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` once the first frame is on the terminal: the first fetch opens
        the workspace (imports the HTTP client, connects), which must not delay the first
        frame. ``call_after_refresh`` alone can run before it."""
        if self._first_frame_drawn:
            self.call_after_refresh(callback)
        else:
            self._after_first_frame.append(callback)

    def _display(self, screen: Screen[Any], renderable: Any) -> None:
        """Textual's (8.2) writing of a frame; the first one written runs what waits for it.
        Textual's Ready comes before it: the first layout posts Ready while the start-up's
        batch holds the frame back, so what ran on Ready (the prompt mounted, the first
        fetch opening the workspace) ran before the first frame was written
        (bench/tui_cold_start.py's app traced: Ready, then 12 ms to the frame)."""
        super()._display(screen, renderable)
        if not self._first_frame_drawn and renderable is not None and not self._batch_count:
            self._first_frame_written()

    def _first_frame_written(self) -> None:
        if self._first_frame_drawn:
            return
        self._first_frame_drawn = True
        self._let_frame_out()
        pending, self._after_first_frame = self._after_first_frame, []
        for callback in pending:
            self.call_later(callback)
        # The objects made at start-up (Textual, the screens) live as long as the app: keep
        # them out of the garbage collector's full passes, which otherwise stall the event
        # loop for 100+ ms while logs stream (measured in bench/tui_keypress.py). The program
        # runs no collection before this frame (cli/main.py): enabled here, tuned.
        if self.tune_gc:
            gc.freeze()
            gc.set_threshold(GC_GEN0, 20, 100)
            gc.enable()

    def _let_frame_out(self) -> None:
        """Wait, 50 ms at most, for Textual's writer thread to take the first frame: what
        runs next (the workspace opened: its HTTP client imported, ~40 ms of Python that
        holds the GIL) kept that thread from writing it for 1-16 ms (the top bar's write
        to its arrival on bench/tui_cold_start.py's terminal, 10 runs: median 1.5, 8 and
        16 among them)."""
        queue = self._writer_queue()
        deadline = time.monotonic() + 0.05
        while queue is not None and queue.qsize() and time.monotonic() < deadline:
            time.sleep(0.0002)

    def _writer_queue(self) -> Any:
        """What Textual 8.2's terminal driver gives its writer thread to write (None: no
        such thread, headless; tests/tui/test_first_frame checks it in a terminal)."""
        return getattr(getattr(self._driver, "_writer_thread", None), "_queue", None)

    #: what waits for the first frame runs this long after Ready at the latest
    FIRST_FRAME_LATEST_S = 0.5

    def on_ready(self) -> None:
        # a terminal that got no frame yet (none to draw): what waits runs anyway
        self.set_timer(self.FIRST_FRAME_LATEST_S, self._first_frame_written)

    def on_mount(self) -> None:
        self._signals: list[int] = []
        self._install_signal_handlers()
        self.set_interval(5.0, self._check_terminal)

    def _install_signal_handlers(self) -> None:
        """SIGHUP (SSH drop) and SIGTERM exit cleanly; deployments live in the daemon."""
        try:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                loop.add_signal_handler(sig, self._terminal_gone)
                self._signals.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
            pass

    def _terminal_gone(self) -> None:
        self.exit(return_code=0)

    def _check_terminal(self) -> None:
        if self.is_headless:
            return
        try:
            alive = os.isatty(sys.__stdin__.fileno()) if sys.__stdin__ else False
        except (OSError, ValueError):
            alive = False
        if not alive:
            self._terminal_gone()

    async def on_unmount(self) -> None:
        with contextlib.suppress(Exception):
            loop = asyncio.get_running_loop()
            for sig in getattr(self, "_signals", []):
                loop.remove_signal_handler(sig)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.workspace.close(), timeout=2.0)

    def poll_interval(self, base: float) -> float:
        return base * self.poll_scale if self.poll_scale > 0 else 0.0

    def get_key_display(self, binding: Binding) -> str:
        """The footer's name of a key; ``enter`` where the terminal cannot draw ⏎."""
        shown = super().get_key_display(binding)
        return glyphs.current().enter if shown == "⏎" else shown

    # -- quitting ----------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """``q``, ``ctrl+c``, ``:q``: ask first when a screen holds work not applied (a staged
        traffic change); asked again while asking (a second ``ctrl+c``), quit."""
        from .screens.dialogs import QuitConfirm

        lost = [text for s in self.screen_stack if (text := getattr(s, "unsaved", lambda: None)())]
        if not lost or isinstance(self.screen, QuitConfirm):
            self.exit()
            return
        body = "\n".join(lost) + "\n\nDeployments keep running; what is staged is lost."
        self.push_screen(
            QuitConfirm("Quit with changes not applied?", body, "Quit"),
            lambda yes: self.exit() if yes else None,
        )

    # -- navigation ----------------------------------------------------------------------------
    def action_view(self, name: str) -> None:
        """``1``-``5``, ``:endpoints``: the view's list itself, not the last screen opened
        from it (Keys, say); a screen holding a change not applied is kept, and said."""
        self.switch_mode(name)
        while len(self.screen_stack) > 1:
            kept = getattr(self.screen, "unsaved", lambda: None)()
            if kept:
                self.notify(f"{kept}\nEsc discards it", title="kept", severity="warning")
                break
            self.pop_screen()

    def action_back(self) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def open_endpoint(self, name: str) -> None:
        from .screens.endpoint_detail import EndpointDetailScreen

        self.push_screen(EndpointDetailScreen(name))

    def open_traffic(self, endpoint: str) -> None:
        from .screens.traffic import TrafficScreen

        self.push_screen(TrafficScreen(endpoint))

    def open_keys(self, endpoint: str) -> None:
        from .screens.keys import KeysScreen

        self.push_screen(KeysScreen(endpoint))

    def open_logs(self, endpoint: str, deployment: str) -> None:
        from .screens.logs import LogsScreen

        self.push_screen(LogsScreen(endpoint, deployment))

    def open_rollout(self, endpoint: str) -> None:
        from .screens.rollout import RolloutScreen

        self.push_screen(RolloutScreen(endpoint))

    def open_history(self, endpoint: str | None = None) -> None:
        from .screens.history import HistoryScreen

        self.push_screen(HistoryScreen(endpoint))

    def open_metrics(self, endpoint: str | None = None) -> None:
        if endpoint is None:
            self.switch_mode("metrics")
            return
        from .screens.metrics import MetricsScreen

        self.push_screen(MetricsScreen(endpoint))

    def run_command(self, text: str) -> None:
        """``:`` commands, k9s style: ``:endpoints``, ``:logs NAME``, ``:metrics [ENDPOINT]``
        (tui/prompt_commands.py)."""
        from .prompt_commands import run_command

        run_command(self, text)

    # -- workspaces --------------------------------------------------------------------------
    #: bumped on every switch; screens drop what they show from the previous workspace
    workspace_generation = 0

    def profile_names(self) -> list[str]:
        """The configured workspaces (the switcher shows when there is more than one)."""
        try:
            from ..services.profiles import list_profiles

            return [p.name for p in list_profiles()]
        except Exception:
            return []

    @work(group="workspace", exclusive=True, exit_on_error=False)
    async def switch_workspace(self, name: str) -> None:
        """Open another configured workspace and show it in every view."""
        try:
            from ..services.backends import open_workspace
            from ..services.profiles import get_profile

            profile = get_profile(name)
            new = open_workspace(profile.name)
        except Exception as exc:
            self.show_error(exc, title=f"workspace {name}")
            return
        old, self._workspace = self._workspace, new
        self.workspace_label = (new.name, new.kind)
        self.workspace_generation += 1
        while len(self.screen_stack) > 1:
            self.pop_screen()
        view = self.top_view()
        if view is not None:
            view.reset_workspace()
        self.notify(f"workspace {new.name} ({new.kind})")
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.close(), timeout=2.0)

    # -- the local control plane -------------------------------------------------------------
    #: the workspace starts its control plane when it does not answer (the local one does:
    #: ``autostart``) and this dashboard has been answered once: from then on it does not
    _may_start = False

    def connected(self) -> None:
        """A call was answered: a control plane that stops from now on (``modeldeck daemon
        stop``, a crash) is said, with S to start it, not started again behind the
        operator's back 0.7 s later."""
        ws = self._workspace
        if getattr(ws, "autostart", False):
            ws.autostart = False  # type: ignore[union-attr]
            self._may_start = True
        if not self._watching:
            self._watching = True
            self._watch_changes()

    #: a long poll on the workspace's changes runs (``_watch_changes``)
    _watching = False
    #: its last call was answered: every change recorded wakes the views (screens whose
    #: figures are all records, ``WATCHED``, then keep no timer of their own)
    watch_live = False

    @work(group="watch", exclusive=True, exit_on_error=False)
    async def _watch_changes(self) -> None:
        """Fetch the views shown again as soon as the workspace records a change (another
        operator's traffic apply, say): shown within one fetch, not at the next poll
        (bench/propagation.py). A back end that cannot tell (Azure ML) is polled only;
        ``MODELDECK_WATCH=0`` turns it off (the benchmark's baseline). While it answers
        (``watch_live``), views of records only keep no timer (screens/base.py)."""
        if os.environ.get("MODELDECK_WATCH") == "0":
            return
        seen: tuple[int, str] | None = None  # (workspace generation, revision)
        while True:
            generation = self.workspace_generation
            after = seen[1] if seen is not None and seen[0] == generation else None
            try:
                revision = await self.workspace.watch(after)
            except asyncio.CancelledError:
                raise
            except Exception:  # the control plane stopped, say: the views say so
                self._watch_not_live()  # until it answers
                await asyncio.sleep(2.0)
                continue
            if revision is None:  # cannot tell (Azure ML): tried again on each fetch answered
                self._watching = False
                self._watch_not_live()  # a switch from a workspace that told
                return
            self.watch_live = True
            if after is not None and revision != after:
                self._repoll()
            seen = (generation, revision)
            self.rollout_toasts.read_all()  # toasts of what changed (the first read: none)

    def _watch_not_live(self) -> None:
        """The watch no longer answers: the views shown fetch now and keep their timers
        again. Only when it had been live: a view's fetch answered starts the watch again
        (``connected()``), and a wake each time it answers None (Azure ML) would fetch the
        views back to back."""
        if self.watch_live:
            self.watch_live = False
            self._repoll()

    # -- rollouts' toasts (issue 14) ---------------------------------------------------------
    _rollout_toasts: RolloutToasts | None = None

    @property
    def rollout_toasts(self) -> RolloutToasts:
        """What the dashboard has seen of the rollouts, toasting their changes
        (tui/rollout_news.py; imported on first use)."""
        if self._rollout_toasts is None:
            from .rollout_news import RolloutToasts

            self._rollout_toasts = RolloutToasts(self)
        return self._rollout_toasts

    def control_plane_stopped(self, exc: BaseException | None) -> bool:
        from ..services.api.errors import Unreachable

        return self._may_start and isinstance(exc, Unreachable)

    def action_start_control_plane(self) -> None:
        if not self._may_start:
            self.notify("this workspace has no control plane to start here", severity="warning")
            return
        self._start_control_plane()

    @work(group="start", exclusive=True, exit_on_error=False)
    async def _start_control_plane(self) -> None:
        ws = self.workspace
        self.notify(f"starting the control plane{glyphs.current().ellipsis}")
        ws.autostart = True  # type: ignore[attr-defined]
        try:
            await ws.list_clusters()  # the client starts it, as on a first call
        except Exception as exc:
            self.show_error(exc, title="control plane not started")
        else:
            self.notify("control plane started", title="control plane")
        finally:
            ws.autostart = False  # type: ignore[attr-defined]
        self._repoll()

    # -- read-only, errors ---------------------------------------------------------------
    def allow_mutation(self, what: str) -> bool:
        if self.readonly:
            self.notify(f"read-only mode: {what} is disabled", severity="warning")
            return False
        return True

    def show_error(self, exc: BaseException, title: str | None = None) -> None:
        self.notify(
            describe_error(exc),
            title=title or getattr(exc, "code", "Error"),
            severity="error",
            timeout=12,
        )

    # -- operations --------------------------------------------------------------------------
    def run_operation(
        self,
        title: str,
        start: Callable[[], Awaitable[OperationHandle]],
        on_done: Callable[[bool], None] | None = None,
    ) -> None:
        """Start a long operation: progress bar while it runs, a notification with its outcome."""
        if not self.allow_mutation(title):
            return
        self._operation_worker(title, start, on_done)

    @work(group="operations", exit_on_error=False)
    async def _operation_worker(
        self,
        title: str,
        start: Callable[[], Awaitable[OperationHandle]],
        on_done: Callable[[bool], None] | None,
    ) -> None:
        key = uuid.uuid4().hex
        self.operations[key] = OperationState(title, 0.0, "starting")
        self.refresh_operations()
        ok = False
        try:
            handle = await start()
            async for op in handle.watch():
                self.operations[key] = OperationState(title, op.progress, op.message)
                self.refresh_operations()
            op = handle.operation
            from ..services.api.domain import OperationStatus
            from ..services.api.errors import error_from_dict

            if op.status is OperationStatus.FAILED:
                raise error_from_dict(op.error or {"message": op.message or "operation failed"})
            ok = True
            self.notify(op.message or "done", title=f"{title}: succeeded")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.show_error(exc, title=f"{title}: failed")
        finally:
            self.operations.pop(key, None)
            self.refresh_operations()
            if on_done is not None:
                on_done(ok)
            self._repoll()

    def run_call(
        self,
        title: str,
        call: Callable[[], Awaitable[Any]],
        on_result: Callable[[Any], None] | None = None,
        *,
        mutating: bool = True,
    ) -> None:
        """A short call (register a model, regenerate a key): notification with its outcome."""
        if mutating and not self.allow_mutation(title):
            return
        self._call_worker(title, call, on_result)

    @work(group="calls", exit_on_error=False)
    async def _call_worker(
        self,
        title: str,
        call: Callable[[], Awaitable[Any]],
        on_result: Callable[[Any], None] | None,
    ) -> None:
        key = uuid.uuid4().hex
        self.operations[key] = OperationState(title, 0.0, "working")
        self.refresh_operations()
        try:
            result = await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.show_error(exc, title=f"{title}: failed")
        else:
            if on_result is not None:
                on_result(result)
            self.notify("done", title=f"{title}: succeeded")
        finally:
            self.operations.pop(key, None)
            self.refresh_operations()
            self._repoll()

    def refresh_operations(self) -> None:
        states = list(self.operations.values())
        for bar in self.screen.query(OperationBar):
            bar.show_states(states)

    def top_view(self) -> ModeldeckScreen | None:
        """The screen on top if it is a view of the workspace; None for a dialog."""
        from .screens.base import ModeldeckScreen  # loaded with the first view

        screen = self.screen
        return screen if isinstance(screen, ModeldeckScreen) else None

    def _repoll(self) -> None:
        """Fetch the views shown again (the top one, those under a dialog), once however
        many ask within a frame (``ModeldeckScreen.refresh_soon``)."""
        from .screens.base import ModeldeckScreen  # loaded with the first view

        for screen in self.screen_stack:
            if isinstance(screen, ModeldeckScreen) and screen.is_shown:
                screen.refresh_soon()

    # -- command palette -------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name in VIEWS:
            yield SystemCommand(f"Go to {name}", f":{name}", lambda n=name: self.switch_mode(n))
        yield SystemCommand("Toggle light/dark theme", "ctrl+t", self.action_toggle_theme)
        names = self.profile_names()
        if len(names) > 1:
            for name in names:
                yield SystemCommand(
                    f"Switch workspace: {name}",
                    f":workspace {name}",
                    lambda n=name: self.switch_workspace(n),
                )


def run_app(workspace_name: str | None = None, readonly: bool = False) -> None:
    """Open the workspace (starting the local control plane on first call) and run the app."""

    def open_it() -> Workspace:
        # after the first frame, on the first fetch: a bad name shows as that view's error
        from ..services.backends import open_workspace

        return open_workspace(workspace_name)

    label = (workspace_name or "default", "opening")
    app = ModeldeckApp(open_it, readonly=readonly, workspace_label=label)
    app.tune_gc = True
    app.run()
