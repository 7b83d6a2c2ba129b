"""Metrics history: reading a 24 h window for 100 deployments, as a ratio to reading one
sample; and the Metrics screen's first frame with history, keypress to frame.

1. ``metrics.db`` filled with 24 h of 10 s rows for 100 deployments (25 endpoints x 4),
   rolled up each hour as the sampler does (the file's size is printed: the disk figure);
   then, medians of ``--rounds``:
   * the store (``MetricStore.read``, in process): one sample (one deployment's last 10 s
     step) and the 24 h window of all 100 deployments (5 min steps: 28,800 points);
   * the same two through a real control plane (``LocalWorkspace.get_metrics_history``
     over its Unix socket: routing, JSON both ways), the daemon started on the file (one
     sample: an endpoint whose one deployment has one 10 s step).
2. The dashboard in a pseudo-terminal (120x40, as bench/tui_keypress.py): the Metrics
   screen of one endpoint with 4 deployments (``--tui-deployments``); each ``w`` moves to
   the next window and the screen is handed that window's history (as a poll brings it:
   widget level, no control plane), the time is from the key to the frame that shows it.
   Target p95 <= 50 ms; a bare Textual app's keypress is the baseline beside it.

    .venv/bin/python bench/metrics_history.py [--rounds 5] [-n 40] [--tui-deployments 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DEPLOYMENTS = [(f"endpoint-{d // 4:02d}", f"deployment-{d % 4}") for d in range(100)]


def fill(path: Path, end: int) -> None:
    """24 h of busy 10 s rows for the 100 deployments, as the sampler writes them."""
    from modeldeck.services.local.controlplane.metricstore import MetricStore, Row

    db = MetricStore(path)
    batch: list[Row] = []
    for ts in range(end - 86400 + 10, end + 1, 10):
        k = ts // 10
        for i, (ep, dep) in enumerate(DEPLOYMENTS):
            n = 500 + (k * 7 + i * 13) % 1500
            e = n // 50
            batch.append(
                Row(ep, dep, ts, n, n - e, 0, e, e, 3.0 + (k + i) % 40, 80.0 + (k * 3 + i) % 300,
                    300.0 + (k * 5 + i) % 1500, (k + i) % 400 + 0.5, 800.0 + (k + i) % 3000, 3, 3)
            )  # fmt: skip
        if ts == end:  # one sample of a deployment of its own endpoint, for the API read
            batch.append(Row("solo", "d", ts, 5, 5, 0, 0, 0, 3.0, 9.0, 20.0, 10.0, 90.0, 1, 1))
        if ts % 3600 == 0 or ts == end:
            db.write(batch)
            batch = []
            db.maintain(ts)
    db._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


async def store_reads(path: Path, end: int, rounds: int) -> tuple[float, float, int]:
    from _common import timed
    from modeldeck.services.local.controlplane.metricstore import MetricStore

    db = MetricStore(path)
    one, n1 = await timed(
        lambda: len(db.read(end - 10, end, 10, endpoint="endpoint-07", deployment="deployment-1")),
        rounds,
    )
    assert n1 == 1, n1
    day, n = await timed(lambda: len(db.read(end - 86400, end, 300)), rounds)
    db.close()
    return one, day, n


async def api_reads(rounds: int) -> tuple[float, float, int]:
    from _common import timed
    from modeldeck.services.api.domain import ClusterSpec, EndpointSpec
    from modeldeck.services.local.client import LocalWorkspace

    async with LocalWorkspace() as ws:  # starts the daemon on the filled file
        await (await ws.create_cluster(ClusterSpec(name="pool-a"))).wait()
        for ep in sorted({e for e, _ in DEPLOYMENTS} | {"solo"}):
            await (await ws.create_endpoint(EndpointSpec(name=ep, compute="pool-a"))).wait()

        async def points(endpoint: str | None, window: str) -> int:
            return len((await ws.get_metrics_history(endpoint, window=window)).points)

        # an endpoint whose one deployment has one sample (a 10 s step)
        one, n1 = await timed(lambda: points("solo", "5m"), rounds)
        assert n1 == 1, n1
        day, n = await timed(lambda: points(None, "24h"), rounds)
    return one, day, n


# -- the dashboard (run as a child in a pseudo-terminal) -------------------------------------
def run_tui_app(deployments: int) -> None:
    from modeldeck.services.api.domain import (
        METRICS_WINDOWS,
        AuthMode,
        Endpoint,
        MetricSample,
        MetricsHistory,
        ProvisioningState,
    )
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp
    from modeldeck.tui.screens.metrics import MetricsScreen
    from modeldeck.tui.widgets.metric_plot import WINDOWS

    now = time.time()
    names = [f"dep-{i}" for i in range(deployments)]
    endpoint = Endpoint(
        "my-endpoint", "pool-a", AuthMode.KEY, "http://x/score", {names[0]: 100}, {},
        ProvisioningState.SUCCEEDED, control=names[0],
    )  # fmt: skip

    def history(window: str) -> MetricsHistory:
        seconds, step = METRICS_WINDOWS[window]
        points = [
            MetricSample(now - seconds + step * k, "my-endpoint", d, 600, 10.0 + (k + i) % 7, 6,
                         0.01 * (k % 3), 4.0, 9.0 + k % 5, 20.0, {"2xx": 594, "5xx": 6},
                         20.0 + k % 9, 80.0, 1, 1)
            for i, d in enumerate(names)
            for k in range(1, seconds // step + 1)
        ]  # fmt: skip
        return MetricsHistory(window, step, points)

    histories = {w: history(w) for w in WINDOWS}

    class Screen(MetricsScreen):
        def _set_window(self, index: int) -> None:  # what the poll after ``w`` brings
            self.window_index = index % len(WINDOWS)
            self.show_data(([], [endpoint], histories[self.window]))

    app = ModeldeckApp(LocalWorkspace("local", autostart=False), autoload=False, theme="dark")

    async def start() -> None:
        screen = Screen("my-endpoint")
        await app.push_screen(screen)
        screen.show_data(([], [endpoint], histories[screen.window]))

    app.call_after_refresh(lambda: asyncio.ensure_future(start()))
    app.run()


def keypresses(n: int, deployments: int) -> tuple[list[float], list[float]]:
    from _tui_pty import Pty, app

    bare: list[float] = []
    pty = app("bare-label")
    try:
        pty.wait_for("following", timeout=60)
        time.sleep(0.5)
        state = 1
        for _ in range(n):
            state = 1 - state
            mark = pty.mark
            sent = pty.send("f")
            bare.append(pty.wait_for(("paused", "following")[state], since=mark) - sent)
            time.sleep(0.05)
    finally:
        pty.close()
    ours: list[float] = []
    pty = Pty([sys.executable, __file__, "--tui-app", str(deployments)])
    try:
        pty.wait_for("over the last 1h", timeout=60)
        time.sleep(1.0)
        order = ["24h", "7d", "5m", "1h"]
        for i in range(n):
            mark = pty.mark
            sent = pty.send("w")
            ours.append(pty.wait_for(f"over the last {order[i % 4]}", since=mark) - sent)
            time.sleep(0.05)
    finally:
        pty.close()
    return bare, ours


def reads(rounds: int) -> None:
    from _common import daemon_home

    with daemon_home("mdbm") as home:
        data = home / "data"
        data.mkdir(parents=True, mode=0o700)
        path = data / "metrics.db"
        end = int(time.time()) // 10 * 10
        t0 = time.perf_counter()
        fill(path, end)
        size = sum(
            os.path.getsize(f"{path}{s}") for s in ("", "-wal") if Path(f"{path}{s}").exists()
        )
        print(
            f"metrics.db, 100 deployments x 24 h (864,000 rows of 10 s, 144,000 of 1 min): "
            f"{size / 1e6:.1f} MB (written in {time.perf_counter() - t0:.0f} s)"
        )
        one, day, n = asyncio.run(store_reads(path, end, rounds))
        print(f"store, one sample:                          {one * 1000:8.2f} ms")
        print(f"store, 24 h of 100 deployments ({n} points): {day * 1000:8.2f} ms")
        print(f"ratio 24 h x 100 / one sample (store):      {day / one:8.0f}")
        one, day, n = asyncio.run(api_reads(rounds))
        print(f"control plane, one sample:                  {one * 1000:8.2f} ms")
        print(f"control plane, 24 h of 100 deployments ({n} points): {day * 1000:8.2f} ms")
        print(f"ratio 24 h x 100 / one (control plane):     {day / one:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-n", type=int, default=40, help="keypresses")
    parser.add_argument("--tui-deployments", type=int, default=4)
    parser.add_argument("--tui-only", action="store_true", help="only the dashboard part")
    parser.add_argument("--tui-app", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tui_app:
        run_tui_app(args.tui_app)
        return
    from _tui_pty import percentile

    if not args.tui_only:
        reads(args.rounds)
    bare, ours = keypresses(args.n, args.tui_deployments)
    b95, o95 = percentile(bare, 95), percentile(ours, 95)
    print(
        f"bare Textual app, keypress:                 p50 {statistics.median(bare) * 1000:.1f} ms"
        f"  p95 {b95 * 1000:.1f} ms"
    )
    print(
        f"Metrics screen, w -> first frame with history ({args.tui_deployments} deployments): "
        f"p50 {statistics.median(ours) * 1000:.1f} ms  p95 {o95 * 1000:.1f} ms  (target p95 <= 50 ms)"
    )
    print(f"ratio p95 Metrics history / bare: {o95 / b95:.2f}")


if __name__ == "__main__":
    main()
