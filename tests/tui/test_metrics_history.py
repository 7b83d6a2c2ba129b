"""The Metrics screen on the control plane's history (issue 13, point 4): it opens on the
previous minutes after a daemon restart, windows 5m/1h/24h/7d by key, every deployment
across the width when no control is marked (no "no data yet" half), and an error-rate
axis that stops at 100 %."""

from __future__ import annotations

import time
from typing import Any

from modeldeck.services.api.domain import Endpoint, MetricSample, MetricsHistory
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon
from modeldeck.services.local.controlplane.metricstore import MetricStore, Row
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.widgets.metric_plot import METRICS, MetricPlot
from textual.widgets import Static

from tests.support.daemon import fresh_home  # noqa: F401 - the fixture
from tests.support.polling import eventually

SIZE = (120, 40)


def _plot_text(plot: MetricPlot) -> str:
    return plot.text()


async def test_after_a_daemon_restart_the_screen_shows_the_previous_10_minutes_at_once(
    fresh_home: Any,  # noqa: F811 - the fixture
    h: Any,
) -> None:
    async with LocalWorkspace() as ws:
        await h.make_endpoint(ws, "ep-hist", {})
    assert daemon.stop_daemon() is True
    # the past 10 minutes, as the sampler writes them (10 s steps), while the daemon is down
    now = int(time.time()) // 10 * 10
    store = MetricStore(fresh_home.data / "metrics.db")
    store.write(
        Row("ep-hist", dep, ts, 50, 49, 0, 1, 1, 4.0, 12.0, 30.0, 25.0, 120.0, 1, 1)
        for dep in ("blue", "green")
        for ts in range(now - 600, now + 1, 10)
    )
    store.close()
    app = ModeldeckApp(LocalWorkspace(), poll_scale=0.25, initial_view="metrics")
    async with app.run_test(size=SIZE) as pilot:  # the client starts the daemon again
        screen = app.screen
        await h.eventually(lambda: screen.loaded, pilot, what="the first poll")
        # the first poll brought the history: the plot spans the 10 minutes already
        xs, ys = screen.history.series("ep-hist/blue", METRICS[0], "1h", time.time())
        assert xs and min(xs) <= -9.0 and max(xs) >= -1.0, xs  # minutes ago
        assert sorted(ys)[len(ys) // 2] == 5.0  # 50 requests a 10 s step
        await pilot.pause()
        treatment = screen.query_one("#plot-treatment", MetricPlot)
        assert "no samples" not in _plot_text(treatment)
        assert "ep-hist/blue" in screen.query_one("#metric-table").shown_keys
        title = str(screen.query_one("#metric-title", Static).render())
        assert "over the last 1h" in title
        # w: the next window, its history read at once
        await pilot.press("w")
        await h.eventually(lambda: screen.history.past_window == "24h", pilot)
        assert "over the last 24h" in str(screen.query_one("#metric-title", Static).render())
        # hours, at 5 minute steps; a point stands at the end of its step, so the oldest is
        # the end of the step that holds the oldest row (between 10 and 5 minutes ago)
        at = time.time()
        xs, _ = screen.history.series("ep-hist/blue", METRICS[0], "24h", at)
        first_end = -(-(now - 600) // 300) * 300
        assert xs and min(xs) == round((first_end - at) / 3600, 3) and max(xs) <= 0, xs
        assert len(xs) >= 2  # the 10 minutes span at least two steps
        await pilot.press("W", "W")
        await h.eventually(lambda: screen.history.past_window == "5m", pilot)


def _sample(dep: str, ts: float, error_rate: float) -> MetricSample:
    return MetricSample(
        ts, "my-endpoint", dep, 100, 10.0, 0, error_rate, 4.0, 9.0, replicas_ready=1
    )


async def test_without_a_control_every_deployment_takes_the_width_and_errors_stop_at_100() -> None:
    app = ModeldeckApp(
        LocalWorkspace("local", autostart=False), initial_view="metrics", autoload=False
    )
    endpoint = Endpoint("my-endpoint", "c", "key", "http://x/score", {"blue": 100}, {}, "Succeeded")  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        past = [_sample("blue", 3600.0 + 60 * k, 1.0) for k in range(1, 60)]
        screen.clock = lambda: 7200.0
        screen.show_data(([], [endpoint], MetricsHistory("1h", 60, past)))
        await pilot.pause()
        control = screen.query_one("#plot-control", MetricPlot)
        treatment = screen.query_one("#plot-treatment", MetricPlot)
        assert not control.display  # no empty half saying "no data yet"
        assert treatment.size.width > SIZE[0] * 0.9
        assert "no control marked" in _plot_text(treatment)
        while METRICS[screen.metric_index].key != "error_rate":
            await pilot.press("m")
        text = _plot_text(treatment)
        assert "100" in text and "115" not in text  # every request failed: the top is 100 %
        assert "no data yet" not in text


async def test_metrics_under_the_logs_record_and_draw_what_came_meanwhile_on_return() -> None:
    """Under an opaque view (the Logs) the Metrics only record (drawing there was painted
    again through the logs: a full frame of them each tick); back on top, what came while
    hidden is drawn."""
    from modeldeck.tui.screens.logs import LogsScreen

    app = ModeldeckApp(
        LocalWorkspace("local", autostart=False), initial_view="metrics", autoload=False
    )
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        screen.clock = lambda: 7200.0
        screen.show_data(([_sample("blue", 7190.0, 1.0)], None, None))
        await pilot.pause()
        treatment = screen.query_one("#plot-treatment", MetricPlot)
        assert "blue" in _plot_text(treatment)
        await app.push_screen(LogsScreen("my-endpoint", "blue"))
        await pilot.pause()
        assert not screen.is_shown
        screen.show_data(([_sample("green", 7195.0, 2.0)], None, None))
        await pilot.pause()
        assert "green" not in _plot_text(treatment)  # recorded, not drawn under the logs
        await pilot.press("escape")
        await eventually(lambda: app.screen is screen, pilot)
        await pilot.pause()
        assert "green" in _plot_text(treatment) and "blue" in _plot_text(treatment)
