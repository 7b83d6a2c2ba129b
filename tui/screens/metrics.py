"""Live metrics: one metric at a time, control and treatment side by side.

Samples come from ``get_metrics`` once a second (poll-then-schedule); the plots
cover a selectable window; a table gives the latest figures per deployment.
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

from ...services.api.domain import Endpoint, MetricSample
from ..css import css_path
from ..format import fmt_float
from ..widgets.metric_plot import METRICS, WINDOWS, MetricHistory, MetricPlot
from ..widgets.resource_table import ResourceTable
from .base import ModeldeckScreen


def _window_label(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds < 3600 else f"{seconds // 3600}h"


class MetricsScreen(ModeldeckScreen):
    CSS_PATH = css_path("views.tcss")
    VIEW_NAME = "Metrics"
    POLL_INTERVAL = 1.0
    BINDINGS = [
        Binding("m", "next_metric", "Next metric"),
        Binding("M", "prev_metric", "Prev metric", show=False, key_display="M"),
        Binding("w", "next_window", "Window"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, endpoint: str | None = None) -> None:
        super().__init__()
        self.endpoint_name = endpoint
        self.history = MetricHistory()
        self.metric_index = 0
        self.window_index = 0
        self.controls: set[str] = set()
        #: endpoint -> why some of its metrics are missing, from this screen's last report
        self.missing: dict[str, str] = {}
        self.clock = time.time  # the plots' "now" (tests may pin it)

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

    async def fetch(self) -> tuple[list[MetricSample], list[Endpoint] | None]:
        if self.endpoint_name:
            report, endpoints = await asyncio.gather(
                self.workspace.get_metrics(self.endpoint_name),
                self.workspace.get_endpoint(self.endpoint_name),
                return_exceptions=True,
            )
            eps = [endpoints] if isinstance(endpoints, Endpoint) else None
        else:
            report, eps_or_exc = await asyncio.gather(
                self.workspace.get_metrics(),
                self.workspace.list_endpoints(),
                return_exceptions=True,
            )
            eps = eps_or_exc if isinstance(eps_or_exc, list) else None
        if isinstance(report, BaseException):
            raise report
        self.missing = dict(report.missing)  # polls of one screen never overlap (base.py)
        return report.samples, eps

    def show(self, data: tuple[list[MetricSample], list[Endpoint] | None]) -> None:
        samples, endpoints = data
        if endpoints is not None:
            self.controls = {f"{e.name}/{e.control}" for e in endpoints if e.control}
        self.history.add(samples)
        if self.is_current:  # a hidden view only records; it redraws when it comes back
            self.redraw(samples)
        else:
            self._stale = True

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if getattr(self, "_stale", False):
            self._stale = False
            self.redraw()

    def redraw(self, samples: list[MetricSample] | None = None) -> None:
        metric = METRICS[self.metric_index]
        window = WINDOWS[self.window_index]
        now = self.clock()
        keys = sorted(self.history.samples)
        controls = [k for k in keys if k in self.controls]
        treatments = [k for k in keys if k not in self.controls]
        label = (lambda k: k.split("/", 1)[1]) if self.endpoint_name else (lambda k: k)
        self.query_one("#metric-title", Static).update(
            f"[b]{metric.title}[/] ({metric.unit}) over the last {_window_label(window)}   "
            f"[dim]m: next metric  w: window[/]"
        )
        missing = {e: why for e, why in self.missing.items() if self.endpoint_name in (None, e)}
        if missing:  # say why CPU/memory (or more) are blank, rather than show nothing
            self.query_one("#metric-title", Static).update(
                f"[b]{metric.title}[/] ({metric.unit})   [yellow]⚠ "
                + escape("; ".join(f"{e}: {why}" for e, why in sorted(missing.items())))
                + "[/]"
            )
        if not keys:
            self.query_one("#metric-title", Static).update(
                f"[b]{metric.title}[/]: no metrics yet (no deployments, or no samples yet)   [dim]m: next metric  w: window[/]"
            )
        self.query_one("#plot-control", MetricPlot).draw(
            "control: "
            + (", ".join(label(k) for k in controls) or "none marked (traffic screen: c)"),
            [(label(k), *self.history.series(k, metric, window, now)) for k in controls],
            window,
        )
        self.query_one("#plot-treatment", MetricPlot).draw(
            "treatment" + ("s" if len(treatments) != 1 else ""),
            [(label(k), *self.history.series(k, metric, window, now)) for k in treatments],
            window,
        )
        rows: dict[str, tuple[Any, ...]] = {}
        for k in keys:
            s = self.history.latest(k)
            if s is None:
                continue
            rows[k] = (
                label(k),
                "control" if k in self.controls else "treatment",
                f"{s.requests_per_second:.1f}",
                str(s.requests_total),
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
        self.redraw()

    def action_next_metric(self) -> None:
        self.metric_index = (self.metric_index + 1) % len(METRICS)
        self.redraw()

    def action_prev_metric(self) -> None:
        self.metric_index = (self.metric_index - 1) % len(METRICS)
        self.redraw()

    def action_next_window(self) -> None:
        self.window_index = (self.window_index + 1) % len(WINDOWS)
        self.redraw()

    def current_filter(self) -> str:
        return self.query_one("#metric-table", ResourceTable).filter.pattern

    def apply_filter(self, pattern: str) -> None:
        self.query_one("#metric-table", ResourceTable).set_filter(pattern)
