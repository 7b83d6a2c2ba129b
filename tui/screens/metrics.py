"""Metrics: one metric at a time, control and treatment side by side (or every
deployment across the width when no control is marked).

The screen opens on the control plane's history (``get_metrics_history``) for its window
(``w``: 5m, 1h, 24h, 7d), read with the first poll and again when the window changes;
live samples come from ``get_metrics`` once a second (poll-then-schedule) and extend it.
Which deployment is each endpoint's control is a record: read with the first poll, then
on the workspace watch's wakes while it is live (each poll when there is none).
A table gives the latest figures per deployment.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static

from ...services.api.domain import Endpoint, MetricSample, MetricsHistory
from .. import glyphs
from ..css import css_path
from ..format import fmt_float
from ..widgets.metric_plot import METRICS, WINDOWS, MetricHistory, MetricPlot
from ..widgets.resource_table import ResourceTable
from .base import ModeldeckScreen

#: how often the history of the window shown is read again
HISTORY_REFRESH_S = 60.0


class MetricsScreen(ModeldeckScreen):
    CSS_PATH = css_path("views.tcss")
    VIEW_NAME = "Metrics"
    POLL_INTERVAL = 1.0
    BINDINGS = [
        Binding("m", "next_metric", "Next metric"),
        Binding("M", "prev_metric", "Prev metric", show=False, key_display="M"),
        Binding("w", "next_window", "Window"),
        Binding("W", "prev_window", "Prev window", show=False, key_display="W"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, endpoint: str | None = None) -> None:
        super().__init__()
        self.endpoint_name = endpoint
        self.history = MetricHistory()
        self.metric_index = 0
        self.window_index = WINDOWS.index("1h")  # the last hour: what just happened
        self.controls: set[str] = set()
        #: endpoint -> why some of its metrics are missing, from this screen's last report
        self.missing: dict[str, str] = {}
        self.clock = time.time  # the plots' "now" (tests may pin it)
        self._history_read_at = 0.0
        self._controls_read = False  # read since the last change the watch told of

    def title_text(self) -> str:
        return f"Metrics {self.endpoint_name}" if self.endpoint_name else "Metrics"

    def compose_body(self) -> ComposeResult:
        yield Static("", id="metric-title")
        with Horizontal(id="plots"):
            yield MetricPlot(id="plot-control")
            yield MetricPlot(id="plot-treatment")
        yield ResourceTable(
            [
                ("name", "DEPLOYMENT"),
                ("role", "ROLE"),
                ("rps", "REQ/S"),
                ("total", "TOTAL"),
                ("p50", "P50 ms"),
                ("p95", "P95 ms"),
                ("err", "ERR%"),
                ("cpu", "CPU%"),
                ("mem", "MEM MB"),
                ("ready", "READY"),
            ],
            id="metric-table",
        )

    def on_mount(self) -> None:
        super().on_mount()
        self.redraw()

    @property
    def window(self) -> str:
        return WINDOWS[self.window_index]

    async def _history(self, window: str) -> MetricsHistory | None:
        """The history of ``window``, unless the one held is of it and recent (None: keep
        it; re-read each minute, so the live samples' hour never leaves a gap)."""
        held = self.history.past_window == window
        if held and time.monotonic() - self._history_read_at < HISTORY_REFRESH_S:
            return None
        self._history_read_at = time.monotonic()
        return await self.workspace.get_metrics_history(self.endpoint_name, window=window)

    async def _endpoints(self) -> Endpoint | list[Endpoint] | None:
        """The endpoints shown (their control marks), unless read since the watch's last
        wake (None: as held)."""
        if self._controls_read and self.mdapp.watch_live:
            return None
        name = self.endpoint_name
        ws = self.workspace
        self._controls_read = True  # before the read: a wake during it reads them again
        try:
            return await (ws.get_endpoint(name) if name else ws.list_endpoints())
        except BaseException:
            self._controls_read = False
            raise

    def on_modeldeck_screen_stale(self, _: ModeldeckScreen.Stale) -> None:
        # before the base class's handler (Textual calls both, this one first): a change
        # was recorded, the marks may have moved
        self._controls_read = False

    async def fetch(
        self,
    ) -> tuple[list[MetricSample], list[Endpoint] | None, MetricsHistory | None]:
        ws = self.workspace
        name = self.endpoint_name
        report, eps_or_exc, history = await asyncio.gather(
            ws.get_metrics(name),
            self._endpoints(),
            self._history(self.window),
            return_exceptions=True,
        )
        if isinstance(eps_or_exc, Endpoint):
            eps: list[Endpoint] | None = [eps_or_exc]
        else:
            eps = eps_or_exc if isinstance(eps_or_exc, list) else None
        if isinstance(report, BaseException):
            raise report
        if isinstance(history, BaseException):  # the live figures still show; say why not
            report.missing.setdefault("*", f"no history: {history}")
            history = None
        self.missing = dict(report.missing)  # polls of one screen never overlap (base.py)
        return report.samples, eps, history

    def show(self, data: tuple[Any, ...]) -> None:
        samples, endpoints = data[0], data[1]
        history = data[2] if len(data) > 2 else None
        if endpoints is not None:
            self.controls = {f"{e.name}/{e.control}" for e in endpoints if e.control}
        if history is not None and history.window == self.window:
            self.history.load(history)
        self.history.add(samples)
        if self.is_shown:  # a hidden view only records; it redraws when it comes back
            self.redraw(samples)
        else:
            self._stale = True

    def on_screen_resume(self) -> None:
        self._controls_read = False  # hidden, it was not woken
        self._history_read_at = 0.0  # nor polled: the history fills the gap in the plots
        super().on_screen_resume()
        if getattr(self, "_stale", False):
            self._stale = False
            self.redraw()

    def redraw(self, samples: list[MetricSample] | None = None) -> None:
        metric = METRICS[self.metric_index]
        window = self.window
        now = self.clock()
        keys = self.history.keys()
        controls = [k for k in keys if k in self.controls]
        treatments = [k for k in keys if k not in self.controls]
        label = (lambda k: k.split("/", 1)[1]) if self.endpoint_name else (lambda k: k)
        keys_help = "[dim]m: next metric  w: window (5m 1h 24h 7d)[/]"
        heading = f"[b]{metric.title}[/] ({metric.unit}) over the last {window}   "
        missing = {e: why for e, why in self.missing.items() if self.endpoint_name in (None, e)}
        if not keys:
            heading = (
                f"[b]{metric.title}[/]: no metrics yet (no deployments, or no samples yet)   "
                + keys_help
            )
        elif missing:  # say why CPU/memory (or more) are blank, rather than show nothing
            heading += (
                f"[yellow]{glyphs.current().warn} "
                + escape("; ".join(f"{e}: {why}" for e, why in sorted(missing.items())))
                + "[/]"
            )
        else:
            heading += keys_help
        self.query_one("#metric-title", Static).update(heading)

        def lines(group: list[str]) -> list[tuple[str, list[float], list[float]]]:
            return [(label(k), *self.history.series(k, metric, window, now)) for k in group]

        control_plot = self.query_one("#plot-control", MetricPlot)
        # no control marked: every deployment across the width, not an empty half
        if control_plot.display != bool(controls):  # a change of layout only when it changes
            control_plot.display = bool(controls)
        if controls:
            control_plot.draw(
                "control: " + ", ".join(label(k) for k in controls),
                lines(controls),
                window,
                ceiling=metric.ceiling,
            )
        self.query_one("#plot-treatment", MetricPlot).draw(
            ("treatment" + ("s" if len(treatments) != 1 else ""))
            if controls
            else "deployments (no control marked: Traffic screen, c)",
            lines(treatments),
            window,
            ceiling=metric.ceiling,
        )
        rows: dict[str, tuple[Any, ...]] = {}
        for k in keys:
            s = self.history.latest(k)
            if s is None:
                continue
            live = bool(self.history.samples.get(k))  # a history point counts its step only
            rows[k] = (
                label(k),
                "control" if k in self.controls else "treatment",
                f"{s.requests_per_second:.1f}",
                str(s.requests_total) if live else "-",
                fmt_float(s.latency_p50_ms),
                fmt_float(s.latency_p95_ms),
                f"{s.error_rate * 100:.1f}",
                fmt_float(s.cpu_percent),
                fmt_float(s.memory_mb, ".0f"),
                f"{s.replicas_ready}/{s.replicas_desired}",
            )
        self.query_one("#metric-table", ResourceTable).sync(rows)

    def clear_data(self) -> None:
        self.history = MetricHistory()
        self._controls_read = False
        self.redraw()

    def action_next_metric(self) -> None:
        self.metric_index = (self.metric_index + 1) % len(METRICS)
        self.redraw()

    def action_prev_metric(self) -> None:
        self.metric_index = (self.metric_index - 1) % len(METRICS)
        self.redraw()

    def action_next_window(self) -> None:
        self._set_window(self.window_index + 1)

    def action_prev_window(self) -> None:
        self._set_window(self.window_index - 1)

    def _set_window(self, index: int) -> None:
        """Show the window at once with what is held, and read its history now."""
        self.window_index = index % len(WINDOWS)
        self.redraw()
        if self.mdapp.autoload:
            self.poll_now()

    def current_filter(self) -> str:
        return self.query_one("#metric-table", ResourceTable).filter.pattern

    def apply_filter(self, pattern: str) -> None:
        self.query_one("#metric-table", ResourceTable).set_filter(pattern)
