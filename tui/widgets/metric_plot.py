"""Metric history and its plot, over the windows of the control plane's
history (5m, 1h, 24h, 7d).

``MetricHistory`` holds, per deployment, the points of the history the screen last read
for its window and the live samples since, in a ``deque(maxlen=...)``: memory stays
bounded however long the view stays open. ``MetricPlot`` draws one metric of several
deployments; only a visible plot is redrawn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from ...services.api.domain import METRICS_WINDOWS, MetricSample, MetricsHistory
from .. import glyphs
from .plot_canvas import Line, Series, plain, render

WINDOWS = tuple(METRICS_WINDOWS)  # "5m", "1h", "24h", "7d": ``w`` steps through them
#: the x axis' unit per window: (seconds per unit, its name)
_X_UNITS = {
    "5m": (1, "seconds"),
    "1h": (60, "minutes"),
    "24h": (3600, "hours"),
    "7d": (86400, "days"),
}


def window_seconds(window: str) -> int:
    return METRICS_WINDOWS[window][0]


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str
    #: the highest value the metric can take (a percentage of requests: 100), if any
    ceiling: float | None = None

    def value(self, s: MetricSample) -> float | None:
        if self.key == "error_rate":
            return s.error_rate * 100
        return getattr(s, self.key)


METRICS = (
    Metric("requests_per_second", "requests/s", "req/s"),
    Metric("latency_p50_ms", "latency p50", "ms"),
    Metric("latency_p95_ms", "latency p95", "ms"),
    Metric("error_rate", "error rate", "%", ceiling=100.0),
    Metric("cpu_percent", "replica CPU", "% of a core"),
    Metric("memory_mb", "replica memory", "MB"),
)


class MetricHistory:
    def __init__(self, max_points: int = 3600) -> None:
        self.max_points = max_points
        #: live samples, one a poll (the last hour at 1 Hz)
        self.samples: dict[str, deque[MetricSample]] = {}
        #: the history read for the window shown: key -> points, oldest first
        self.past: dict[str, list[MetricSample]] = {}
        #: the window ``past`` covers (None: not read yet)
        self.past_window: str | None = None

    def add(self, samples: Iterable[MetricSample]) -> None:
        for s in samples:
            key = f"{s.endpoint}/{s.deployment}"
            series = self.samples.get(key)
            if series is None:
                series = self.samples[key] = deque(maxlen=self.max_points)
            if series and series[-1].ts == s.ts:
                continue
            series.append(s)

    def load(self, history: MetricsHistory) -> None:
        """The history of ``history.window`` replaces the one read before."""
        past: dict[str, list[MetricSample]] = {}
        for p in history.points:
            past.setdefault(f"{p.endpoint}/{p.deployment}", []).append(p)
        self.past = past
        self.past_window = history.window

    def keys(self) -> list[str]:
        return sorted(set(self.samples) | set(self.past))

    def series(
        self, key: str, metric: Metric, window: str, now: float
    ) -> tuple[list[float], list[float]]:
        """x (in the window's unit, before now: negative) and y of ``key``'s points: the
        history up to the first live sample, then the live samples."""
        unit = _X_UNITS[window][0]
        start = now - window_seconds(window)
        live = self.samples.get(key, ())
        first_live = live[0].ts if live else float("inf")
        points = [p for p in self.past.get(key, ()) if p.ts < first_live]
        xs: list[float] = []
        ys: list[float] = []
        for s in (*points, *live):
            if s.ts < start:
                continue
            v = metric.value(s)
            if v is None:
                continue
            xs.append(round((s.ts - now) / unit, 3))
            ys.append(float(v))
        return xs, ys

    def latest(self, key: str) -> MetricSample | None:
        series = self.samples.get(key)
        if series:
            return series[-1]
        past = self.past.get(key)
        return past[-1] if past else None


class MetricPlot(Widget):
    """One metric of several deployments over a window (:mod:`.plot_canvas` draws it)."""

    DEFAULT_CSS = "MetricPlot { height: 1fr; width: 1fr; min-height: 6; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._title = ""
        self._series: list[Series] = []
        self._window = WINDOWS[0]
        self._top = 1.0
        self._cache: tuple[tuple[int, int], list[Line]] | None = None
        self._strips: tuple[tuple[int, int], list[Strip]] | None = None

    def draw(
        self,
        title: str,
        lines: list[tuple[str, list[float], list[float]]],
        window: str,
        *,
        ceiling: float | None = None,
    ) -> None:
        """Plot ``lines`` over ``window``; the y axis from zero (a small wobble stays small)
        to a little above the highest value, never past ``ceiling``. No points: an empty
        frame whose title says so (not a made-up line at zero)."""
        series = [Series(label, xs, ys) for label, xs, ys in lines if xs]
        top = max((max(s.ys) for s in series), default=0.0)
        high = top * 1.15 if top > 0 else 1.0
        self._top = min(high, ceiling) if ceiling is not None and top > 0 else high
        self._title = title if series else f"{title} (no samples in the last {window})"
        self._series = series
        self._window = window
        self._cache = None
        self._strips = None
        self.refresh()

    def lines(self) -> list[Line]:
        """The plot at the widget's size (kept until the data or the size change)."""
        size = (self.size.width, self.size.height)
        if self._cache is None or self._cache[0] != size:
            g = glyphs.current()
            unit, unit_name = _X_UNITS[self._window]
            self._cache = (
                size,
                render(
                    self._title,
                    self._series,
                    width=max(size[0], 10),
                    height=max(size[1], 5),
                    x_range=(-window_seconds(self._window) / unit, 0.0),
                    y_top=self._top,
                    x_label=f"{unit_name} ago",
                    # no line across three missing steps of the history
                    max_gap=3 * METRICS_WINDOWS[self._window][1] / unit,
                    dots=g.braille,
                    mono=g.mono,
                    box=g.box,
                ),
            )
        return self._cache[1]

    def text(self) -> str:
        return plain(self.lines())

    def render_line(self, y: int) -> Strip:
        """Lines as strips of segments, made once per data or size change, with one style
        per colour: a frame costs no style work for the runs of dots."""
        size = (self.size.width, self.size.height)
        if self._strips is None or self._strips[0] != size:
            base = self.rich_style
            styles: dict[str | None, Style] = {None: base}
            strips = []
            for line in self.lines():
                segments = []
                for text, name in line:
                    style = styles.get(name)
                    if style is None:
                        style = styles[name] = base + Style.parse(name or "")
                    segments.append(Segment(text, style))
                strips.append(Strip(segments).crop_extend(0, size[0], base))
            self._strips = (size, strips)
        strips = self._strips[1]
        return strips[y] if y < len(strips) else Strip.blank(size[0], self.rich_style)
