"""Metrics history on Azure ML (issue 13, point 4): Azure Monitor keeps it, so the window
is asked of it (the ARM metrics call's ``timespan`` and ``interval``) rather than sampled:
requests split by deployment and status class, latencies by deployment."""

from __future__ import annotations

import time
from typing import Any

import pytest
from modeldeck.services.api.errors import InvalidInput, NotFound


def _minutes(now: float, n: int) -> list[tuple[float, str, str, dict[str, float]]]:
    """``n`` minutes before now: blue 60 requests a minute (1 a 5xx), latencies; green idle."""
    out: list[tuple[float, str, str, dict[str, float]]] = []
    first = int(now) // 60 * 60 - 60 * n
    for k in range(n):
        t = float(first + 60 * k)
        out += [
            (t, "blue", "2xx", {"RequestsPerMinute": 59}),
            (t, "blue", "5xx", {"RequestsPerMinute": 1}),
            (t, "blue", "", {"RequestLatency_P50": 10.0, "RequestLatency_P95": 20.0 + k % 2}),
        ]
    return out


async def test_history_asks_azure_monitor_for_the_window(ws: Any, seeded: Any) -> None:
    seeded.metric_minutes["my-endpoint"] = _minutes(time.time(), 30)
    hist = await ws.get_metrics_history("my-endpoint", "blue", window="1h")
    assert (hist.window, hist.step_s) == ("1h", 60)
    full = [p for p in hist.points if p.requests_total == 60]
    assert len(full) >= 29 and all(p.deployment == "blue" for p in hist.points)
    p = full[-1]
    assert p.status_codes == {"2xx": 59, "5xx": 1} and p.errors_total == 1
    assert p.requests_per_second == 1.0 and p.error_rate == pytest.approx(1 / 60)
    assert p.latency_p50_ms == 10.0 and p.latency_p95_ms in (20.0, 21.0)
    assert "CPU, memory" in hist.missing["my-endpoint"]  # said, not shown as zero
    calls = seeded.calls("GET", "/providers/Microsoft.Insights/metrics")
    assert len(calls) == 2  # requests by status class, latencies: one call each
    filters = sorted(c.query["$filter"] for c in calls)
    assert filters == ["deployment eq '*'", "deployment eq '*' and statusCodeClass eq '*'"]
    assert {c.query["interval"] for c in calls} == {"PT1M"}

    day = await ws.get_metrics_history("my-endpoint", window="24h")
    assert day.step_s == 300  # Azure Monitor's PT5M grain
    blue = [q for q in day.points if q.deployment == "blue"]
    assert sum(q.requests_total for q in blue) == 30 * 60
    assert all(q.ts <= time.time() + 1 for q in blue)
    assert seeded.calls("GET", "/providers/Microsoft.Insights/metrics")[-1].query["interval"] in (
        "PT5M",
    )


async def test_history_refuses_an_unknown_window_and_names_a_missing_deployment(
    ws: Any, seeded: Any
) -> None:
    with pytest.raises(InvalidInput, match="5m, 1h, 24h, 7d"):
        await ws.get_metrics_history("my-endpoint", "blue", window="3h")
    with pytest.raises(NotFound):
        await ws.get_metrics_history("my-endpoint", "nope", window="1h")
