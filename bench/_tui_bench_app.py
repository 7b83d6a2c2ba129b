"""The apps the dashboard benchmarks run in a pseudo-terminal (see _tui_pty.py).

Modes:
  bare-label   a bare Textual app with one Label (the cold-start baseline); ``f`` toggles it
  bare-input   a bare Textual app with an Input echoing its value (the filter baseline)
  logs-load    the dashboard's log view fed 2,000 lines/s, metrics ticking at 1 Hz underneath
  table N      the dashboard's deployments view holding N deployments
  burst N      the dashboard's log view; ``b`` feeds N lines as fast as the app takes them
  bare-log N   a bare Textual app with Textual's own Log widget (20,000 lines kept); ``b`` as above

The dashboard modes feed the screens directly with domain objects (``autoload=False``):
they measure the UI, not the control plane.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Input, Label

MODE = sys.argv[1]
_tasks: list[asyncio.Future[None]] = []
ARG = int(sys.argv[2]) if len(sys.argv) > 2 else 0


class BareLabel(App[None]):
    BINDINGS = [("f", "toggle", "toggle"), ("q", "quit", "quit")]

    def compose(self) -> ComposeResult:
        yield Label("hello bare following", id="l")

    def action_toggle(self) -> None:
        label = self.query_one("#l", Label)
        text = str(label.render())
        label.update("hello bare paused" if "following" in text else "hello bare following")


class BareInput(App[None]):
    def compose(self) -> ComposeResult:
        yield Input(id="i")
        yield Label("filter none", id="l")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#l", Label).update(f"filter /{event.value}: done")


def _dashboard() -> object:
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp

    app = ModeldeckApp(
        LocalWorkspace("local", autostart=False), autoload=False, initial_view="deployments"
    )
    app.tune_gc = True  # as run_app (the program a user runs) sets it: tests do not
    return app


def _line(i: int) -> object:
    from modeldeck.services.api.domain import LogLine

    return LogLine(
        time.time(),
        "my-endpoint",
        "blue",
        f"blue-{i % 3}",
        "stdout",
        f'POST /score 200 {i} {{"rows": 2, "ms": 3.1}}',
    )


async def _lag_monitor(path: str) -> None:
    """Record how late a 5 ms sleep wakes up: the event loop's stalls (for profiling)."""
    import gc

    gcs: list[float] = []
    starts: list[float] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            starts.append(time.perf_counter())
        elif starts:
            gcs.append((time.perf_counter() - starts.pop(), info.get("generation")))

    gc.callbacks.append(on_gc)
    lags: list[float] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + 8
    while loop.time() < end:
        t = loop.time()
        await asyncio.sleep(0.005)
        lags.append(loop.time() - t - 0.005)
    lags.sort()
    with open(path, "w") as f:
        f.write(
            f"p50 {lags[len(lags) // 2] * 1000:.1f} p95 {lags[int(len(lags) * 0.95)] * 1000:.1f} max {lags[-1] * 1000:.1f} ms\n"
        )
        slow = sorted(gcs, reverse=True)[:5]
        f.write(
            f"gc: {len(gcs)} collections, slowest: {[(round(d * 1000, 1), g) for d, g in slow]}\n"
        )


def run_logs_load() -> None:
    from modeldeck.services.api.domain import MetricSample
    from modeldeck.tui.screens.logs import LogsScreen
    from modeldeck.tui.screens.metrics import MetricsScreen

    app = _dashboard()

    async def start() -> None:
        metrics = MetricsScreen("my-endpoint")
        await app.push_screen(metrics)  # type: ignore[attr-defined]
        logs = LogsScreen("my-endpoint", "blue")
        await app.push_screen(logs)  # type: ignore[attr-defined]
        counter = [0]

        def feed() -> None:  # 20 lines every 10 ms = 2,000 lines/s
            start_i = counter[0]
            counter[0] += 20
            logs.feed_many([_line(i) for i in range(start_i, start_i + 20)])

        def tick() -> None:  # a metrics sample per deployment, once a second
            now = time.time()
            k = int(now)
            samples = [
                MetricSample(
                    now,
                    "my-endpoint",
                    d,
                    10 * k,
                    10.0 + k % 5,
                    0,
                    0.0,
                    4.0,
                    9.0,
                    cpu_percent=20.0,
                    memory_mb=80.0,
                )
                for d in ("blue", "green")
            ]
            metrics.show_data((samples, None))

        if os.environ.get("BENCH_NO_LOGS") != "1":
            app.set_interval(0.01, feed)  # type: ignore[attr-defined]
        app.set_interval(1.0, tick)  # type: ignore[attr-defined]
        if os.environ.get("BENCH_LAG_FILE"):
            _tasks.append(asyncio.ensure_future(_lag_monitor(os.environ["BENCH_LAG_FILE"])))

    app.call_after_refresh(lambda: asyncio.ensure_future(start()))  # type: ignore[attr-defined]
    app.run()  # type: ignore[attr-defined]


def run_table(n: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support
    from tests.support.rows import many_deployments

    app = _dashboard()
    deployments = many_deployments(n)

    def load() -> None:
        app.screen.show_data(deployments)  # type: ignore[attr-defined]

    app.call_after_refresh(load)  # type: ignore[attr-defined]
    app.run()  # type: ignore[attr-defined]


def run_burst(n: int) -> None:
    from modeldeck.tui.screens.logs import LogsScreen
    from textual.binding import Binding

    class BurstLogs(LogsScreen):
        BINDINGS = [*LogsScreen.BINDINGS, Binding("b", "burst", "Burst")]

        async def action_burst(self) -> None:
            for start in range(0, n, 1000):
                self.feed_many([_line(i) for i in range(start, start + 1000)])
                await asyncio.sleep(0)
            await asyncio.sleep(0.3)
            self.notify(f"burst done {self.view.line_count} kept")

    app = _dashboard()
    app.call_after_refresh(lambda: app.push_screen(BurstLogs("my-endpoint", "blue")))  # type: ignore[attr-defined]
    app.run()  # type: ignore[attr-defined]


def run_bare_log(n: int) -> None:
    from textual.widgets import Log

    class BareLog(App[None]):
        BINDINGS = [("b", "burst", "burst")]

        def compose(self) -> ComposeResult:
            yield Log(max_lines=20_000, id="log")
            yield Label("bare log ready", id="l")

        async def action_burst(self) -> None:
            log = self.query_one(Log)
            for start in range(0, n, 1000):
                log.write_lines(
                    f"blue-{i % 3} POST /score 200 {i}" for i in range(start, start + 1000)
                )
                await asyncio.sleep(0)
            await asyncio.sleep(0.3)
            self.query_one("#l", Label).update(f"burst done {log.line_count} kept")

    BareLog().run()


if __name__ == "__main__":
    if MODE == "bare-label":
        BareLabel().run()
    elif MODE == "bare-input":
        BareInput().run()
    elif MODE == "logs-load":
        run_logs_load()
    elif MODE == "table":
        run_table(ARG or 2000)
    elif MODE == "burst":
        run_burst(ARG or 100_000)
    elif MODE == "bare-log":
        run_bare_log(ARG or 100_000)
    else:
        raise SystemExit(f"unknown mode {MODE}")
