"""Metrics history (issue 13, point 4): ``metrics.db`` keeps 10 s rows for 24 h and 1 min
roll-ups for 30 days, its own 0600 file; the sampler turns cumulative counters into each
step's counts; the control plane answers ``get_metrics_history`` and keeps it across a
restart."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest
from modeldeck.services.api.domain import METRICS_WINDOWS, MetricSample
from modeldeck.services.api.errors import InvalidInput, NotFound
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon
from modeldeck.services.local.controlplane.metricstore import (
    COARSE_KEEP_S,
    FINE_KEEP_S,
    MetricStore,
    Row,
    row_bytes,
)
from modeldeck.services.local.controlplane.sampler import interval_row

T0 = 1_800_000_000  # a multiple of 3600


def _row(ep: str, dep: str, ts: int, requests: int, **kw: object) -> Row:
    errors = int(kw.pop("errors", 0))  # type: ignore[call-overload]
    values: dict[str, object] = {
        "s2xx": requests - errors,
        "s4xx": 0,
        "s5xx": errors,
        "errors": errors,
        "p50_ms": 5.0,
        "p95_ms": 20.0,
        "p99_ms": 40.0,
        "cpu_percent": 50.0,
        "memory_mb": 200.0,
        "ready": 1,
        "desired": 1,
    }
    values.update(kw)
    return Row(ep, dep, ts, requests, **values)  # type: ignore[arg-type]


def test_the_file_is_private_and_its_own(tmp_path: Path) -> None:
    db = MetricStore(tmp_path / "metrics.db")
    db.write([_row("ep", "blue", T0, 1)])
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(tmp_path / "metrics.db") + suffix)
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    db.close()


def test_steps_roll_up_into_minutes_and_read_at_the_window_resolution(tmp_path: Path) -> None:
    db = MetricStore(tmp_path / "metrics.db")
    # 2 h of blue: 10 requests a step (1 error each minute's first step), green idle
    for ts in range(T0 + 10, T0 + 7200 + 1, 10):
        first = ts % 60 == 10
        db.write(
            [
                _row("ep", "blue", ts, 10, errors=1 if first else 0, p95_ms=90.0 if first else 20),
                _row("ep", "green", ts, 0, p50_ms=None, p95_ms=None, p99_ms=None, ready=0),
            ]
        )
        if ts % 60 == 0:
            db.maintain(ts)
    assert db.rolled_until() == T0 + 7200
    end = T0 + 7200
    fine = db.read(end - 300, end, 10, endpoint="ep", deployment="blue")
    assert len(fine) == 30 and all(p.requests_per_second == 1.0 for p in fine)
    minutes = db.read(end - 3600, end, 60, endpoint="ep", deployment="blue")
    assert len(minutes) == 60
    m = minutes[-1]
    assert (m.requests_total, m.errors_total, m.status_codes) == (60, 1, {"2xx": 59, "5xx": 1})
    assert m.requests_per_second == 1.0 and m.error_rate == pytest.approx(1 / 60)
    assert m.latency_p95_ms == 90.0  # the worst step of the minute
    assert m.latency_p50_ms == 5.0 and m.cpu_percent == 50.0 and m.memory_mb == 200.0
    hours = db.read(end - 7200, end, 3600, endpoint="ep")
    blue = [p for p in hours if p.deployment == "blue"]
    green = [p for p in hours if p.deployment == "green"]
    assert [p.requests_total for p in blue] == [3600, 3600]
    assert [p.ts for p in blue] == [T0 + 3600, T0 + 7200]  # a point's ts ends its step
    assert green[0].requests_total == 0 and green[0].latency_p95_ms is None
    assert green[0].replicas_ready == 0
    # the minute in progress (not rolled up yet) is in a coarse read, from the fine rows
    db.write([_row("ep", "blue", end + 10, 7)])
    latest = db.read(end - 600, end + 10, 60, endpoint="ep", deployment="blue")[-1]
    assert (latest.ts, latest.requests_total) == (end + 10, 7)  # the step ends now
    assert latest.requests_per_second == 0.7  # over the 10 s of it that passed
    db.close()


def test_retention_drops_fine_after_a_day_and_coarse_after_30_days(tmp_path: Path) -> None:
    db = MetricStore(tmp_path / "metrics.db")
    db.write([_row("ep", "old", T0 + 10 * k, 1) for k in range(1, 7)])
    db.maintain(T0 + 60)
    later = T0 + 60 + FINE_KEEP_S
    db.maintain(later)
    assert db.read(T0, later, 10) == []  # the 10 s rows are gone
    assert [p.requests_total for p in db.read(T0, later, 60)] == [6]  # the minute stays
    db.maintain(T0 + 60 + COARSE_KEEP_S)
    assert db.read(T0, T0 + 60 + COARSE_KEEP_S, 3600) == []
    series = db._db.execute("SELECT COUNT(*) FROM series").fetchone()[0]
    assert series == 0  # a deployment with no row left is forgotten
    db.close()


def test_disk_for_100_deployments_over_24h_stays_within_the_bound(tmp_path: Path) -> None:
    """The bound: rows x :func:`row_bytes` (from the schema), for 8,640 fine rows and
    1,440 coarse rows per deployment a day. Measured by writing a day of busy rows (every
    count and gauge non-zero) for 100 deployments."""
    path = tmp_path / "metrics.db"
    db = MetricStore(path)
    deployments = [(f"endpoint-{d // 4:02d}", f"deployment-{d % 4}") for d in range(100)]
    batch: list[Row] = []
    for ts in range(T0 + 10, T0 + 86400 + 1, 10):
        k = ts // 10
        for i, (ep, dep) in enumerate(deployments):
            n = 500 + (k * 7 + i * 13) % 1500
            batch.append(
                _row(
                    ep,
                    dep,
                    ts,
                    n,
                    errors=n // 50,
                    p50_ms=3.0 + (k + i) % 40,
                    p95_ms=80.0 + (k * 3 + i) % 300,
                    p99_ms=300.0 + (k * 5 + i) % 1500,
                    cpu_percent=(k + i) % 400 + 0.5,
                    memory_mb=800.0 + (k + i) % 3000,
                    ready=3,
                    desired=3,
                )
            )
        if ts % 3600 == 0:
            db.write(batch)
            batch = []
            db.maintain(ts)
    db._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    used = sum(
        os.path.getsize(str(path) + s) for s in ("", "-wal") if os.path.exists(str(path) + s)
    )
    rows = 100 * (86400 // 10 + 86400 // 60)
    bound = rows * row_bytes()
    print(f"metrics.db for 100 deployments x 24 h: {used / 1e6:.1f} MB, bound {bound / 1e6:.1f} MB")
    assert used <= bound
    db.close()


def _sample(requests: int, errors: int, codes: dict[str, int]) -> MetricSample:
    return MetricSample(
        ts=0.0,
        endpoint="ep",
        deployment="blue",
        requests_total=requests,
        errors_total=errors,
        status_codes=codes,
        latency_p95_ms=12.0,
        cpu_percent=30.0,
        memory_mb=100.0,
        replicas_ready=1,
        replicas_desired=2,
    )


def test_a_step_counts_what_the_counters_grew_by() -> None:
    first = _sample(100, 5, {"200": 90, "404": 5, "503": 5})
    assert interval_row(first, None, T0) is None  # the counts before the start are not ours
    before = (100, 5, {"200": 90, "404": 5, "503": 5})
    row = interval_row(_sample(130, 7, {"200": 115, "404": 6, "503": 7, "302": 2}), before, T0)
    assert row is not None
    assert (row.requests, row.s2xx, row.s4xx, row.s5xx, row.errors) == (30, 25, 1, 2, 2)
    assert (row.p95_ms, row.cpu_percent, row.ready, row.desired) == (12.0, 30.0, 1, 2)
    # a counter that went down (a restarted pod or gateway) counts from its new value
    reset = interval_row(_sample(8, 1, {"200": 7, "500": 1}), before, T0)
    assert reset is not None and (reset.requests, reset.s2xx, reset.s5xx) == (8, 7, 1)


@pytest.mark.e2e
async def test_the_daemon_samples_traffic_and_keeps_history_across_a_restart(fresh_home, h) -> None:  # type: ignore[no-untyped-def]
    """Real traffic through the gateway, no dashboard open: the sampler writes it every
    10 s; after ``daemon stop`` and a new start, the history is still there."""
    async with LocalWorkspace() as ws:
        await h.make_endpoint(ws, "ep-hist")
        await h.wait(
            await ws.create_deployment(h.deployment("blue", "ep-hist", cpu=0.25), all_traffic=True)
        )

        async def traffic() -> None:
            while True:
                await ws.invoke("ep-hist", b'{"data": [[1, 2, 3, 4]]}')
                await asyncio.sleep(0.1)

        task = asyncio.ensure_future(traffic())
        try:
            deadline = time.monotonic() + 60
            while True:
                hist = await ws.get_metrics_history("ep-hist", "blue", window="5m")
                if sum(p.requests_total for p in hist.points) >= 20:
                    break
                assert time.monotonic() < deadline, "no history after 60 s of traffic"
                await asyncio.sleep(1.0)
        finally:
            task.cancel()
        before = await ws.get_metrics_history("ep-hist", window="5m")
        assert before.step_s == METRICS_WINDOWS["5m"][1]
        point = next(p for p in before.points if p.requests_total)
        assert point.status_codes.get("2xx") and point.latency_p95_ms is not None
        assert point.cpu_percent is not None and point.memory_mb
        with pytest.raises(InvalidInput, match="5m, 1h, 24h, 7d"):
            await ws.get_metrics_history("ep-hist", window="2h")
        with pytest.raises(NotFound):
            await ws.get_metrics_history("nope", window="5m")
    assert daemon.stop_daemon() is True
    async with LocalWorkspace() as ws:  # auto-starts a new daemon
        after = await ws.get_metrics_history("ep-hist", window="5m")
    served_before = {p.ts: p.requests_total for p in before.points}
    assert {p.ts: p.requests_total for p in after.points if p.ts in served_before} == served_before
