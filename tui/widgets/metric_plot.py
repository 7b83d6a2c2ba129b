"""Live metric history and its plot (textual-plotext), over bounded windows.

``MetricHistory`` keeps, per deployment, a ``deque(maxlen=...)`` of samples: memory
stays bounded however long the view stays open. ``MetricPlot`` draws one metric of
several deployments; only a visible plot is redrawn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from textual_plotext import PlotextPlot

from ...services.api.domain import MetricSample

WINDOWS = (60, 300, 900, 3600)  # seconds: 1m, 5m, 15m, 1h


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str

    def value(self, s: MetricSample) -> float | None:
        if self.key == "error_rate":
            return s.error_rate * 100
        return getattr(s, self.key)


METRICS = (
    Metric("requests_per_second", "requests/s", "req/s"),
    Metric("latency_p50_ms", "latency p50", "ms"),
    Metric("latency_p95_ms", "latency p95", "ms"),
    Metric("error_rate", "error rate", "%"),
    Metric("cpu_percent", "replica CPU", "% of a core"),
    Metric("memory_mb", "replica memory", "MB"),
)


class MetricHistory:
    def __init__(self, max_points: int = max(WINDOWS)) -> None:
        self.max_points = max_points
        self.samples: dict[str, deque[MetricSample]] = {}

    def add(self, samples: Iterable[MetricSample]) -> None:
        for s in samples:
            key = f"{s.endpoint}/{s.deployment}"
            series = self.samples.get(key)
            if series is None:
                series = self.samples[key] = deque(maxlen=self.max_points)
            if series and series[-1].ts == s.ts:
                continue
            series.append(s)

    def series(
        self, key: str, metric: Metric, window: float, now: float
    ) -> tuple[list[float], list[float]]:
        xs: list[float] = []
        ys: list[float] = []
        for s in self.samples.get(key, ()):
            if s.ts < now - window:
                continue
            v = metric.value(s)
            if v is None:
                continue
            xs.append(round(s.ts - now, 1))
            ys.append(float(v))
        return xs, ys

    def latest(self, key: str) -> MetricSample | None:
        series = self.samples.get(key)
        return series[-1] if series else None


class MetricPlot(PlotextPlot):
    DEFAULT_CSS = "MetricPlot { height: 1fr; width: 1fr; min-height: 6; }"

    def draw(
        self, title: str, lines: list[tuple[str, list[float], list[float]]], window: float
    ) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title(title)
        plt.xlim(-window, 0)
        any_data = False
        top = 0.0
        for label, xs, ys in lines:
            if xs:
                plt.plot(xs, ys, label=label, marker="braille")
                any_data = True
                top = max(top, *ys)
        if not any_data:
            plt.plot([-window, 0], [0, 0], label="no data yet", marker="braille")
        plt.ylim(0, top * 1.15 if top > 0 else 1)  # from zero: a small wobble stays small
        plt.xlabel("seconds ago")
        self.refresh()
