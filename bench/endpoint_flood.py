"""A neighbour's latency while one endpoint is flooded at 100x its capacity, same run.

    python bench/endpoint_flood.py [--requests 2000] [--concurrency 4] [--times 100]
                                   [--flood-connections 256] [--quick]

Two endpoints behind one real gateway (key auth on), each with one real replica:
``quiet`` (a no-op script, max ``--concurrency`` requests in flight) and ``flooded``
(a script that sleeps 50 ms, one request at a time: 20 requests/s, az ml's default
``max_concurrent_requests_per_instance=1`` and ``max_queue_wait_ms=500``). A load
generator (bench/gateway.py's, a process of its own) sends ``--requests`` requests with
the key to ``quiet`` over ``--concurrency`` connections: alone ("before"), while a
flooder process sends ``--times`` x the flooded endpoint's capacity (2,000 requests/s
by default, open loop) to ``flooded``, at most ``--flood-connections`` in flight
("flooded"), and alone again ("after"). It prints the quiet endpoint's p50/p99 in each
phase, the ratios to "before" (target: p50 during the flood <= 2x before), and what the
flooder got (statuses, the rate it reached). Bounded: the flooder stops when told, or
after --max-seconds (120).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

from _common import KEY, NOOP, data_plane, serve_script, sibling

SLOW = """
import time
def init():
    pass
def run(raw_data):
    time.sleep(0.05)
    return '{"ok": true}'
"""
SLOW_RPS = 20  # one request at a time, 50 ms each


# --------------------------------------------------------------------------- the flooder


async def _flood(url: str, rate: float, connections: int, max_seconds: float, body_kb: int) -> None:
    """Send ``rate`` requests/s (open loop: a request is sent when it is due, whether or
    not the earlier ones were answered), at most ``connections`` in flight (one connection
    each; a request due beyond that is counted as skipped), until told to stop."""
    import aiohttp

    body = (
        b'{"data": [[1, 2, 3, 4]]}' if not body_kb else b'{"pad": "%s"}' % (b"x" * (body_kb * 1024))
    )
    headers = {"Authorization": f"Bearer {KEY}"}
    statuses: dict[int, int] = {}
    failed = skipped = 0
    inflight = 0
    stop = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal failed, inflight
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
        except aiohttp.ClientError:
            failed += 1
        finally:
            inflight -= 1

    async def pace(session: aiohttp.ClientSession) -> None:
        nonlocal skipped, inflight
        sent = 0
        t0 = time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - t0) * rate)
            while sent < due:
                sent += 1
                if inflight >= connections:
                    skipped += 1
                    continue
                inflight += 1
                task = asyncio.ensure_future(one(session))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(0.001)

    async def control() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1.0)  # reach the rate before the measurement starts
        print(json.dumps({"ready": True}), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)  # "stop" or EOF
        stop.set()

    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        pacer = asyncio.ensure_future(pace(session))
        ctl = asyncio.ensure_future(control())
        await asyncio.wait({ctl}, timeout=max_seconds)
        stop.set()
        ctl.cancel()
        await pacer
        await asyncio.gather(*list(tasks), return_exceptions=True)
    elapsed = time.monotonic() - started
    answered = sum(statuses.values())
    print(
        json.dumps(
            {
                "statuses": statuses,
                "failed": failed,
                "skipped": skipped,
                "rps": (answered + failed) / elapsed,
            }
        ),
        flush=True,
    )


# --------------------------------------------------------------------------- the bench


async def _bench(args: argparse.Namespace) -> int:
    from modeldeck.services.api.domain import RequestSettings

    gwbench = sibling("gateway")  # its load generator
    loop = asyncio.get_running_loop()
    flooder: subprocess.Popen[str] | None = None
    async with data_plane("md-bench-epflood-") as (root, sup, gw):
        try:
            for name, source, concurrency in (
                ("quiet", NOOP, args.concurrency),
                ("flooded", SLOW, 1),
            ):
                settings = RequestSettings(max_concurrent_requests_per_instance=concurrency)
                await serve_script(sup, gw, root, name, source, concurrency, settings)
            url, auth = gw.scoring_uri("quiet"), {"Authorization": f"Bearer {KEY}"}

            def load() -> dict[str, float]:
                return gwbench.run_load(url, args.concurrency, args.requests, auth)

            before = await loop.run_in_executor(None, load)
            rate = args.times * SLOW_RPS
            flooder = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--flood-url",
                    gw.scoring_uri("flooded"),
                    "--rate",
                    str(rate),
                    "--flood-connections",
                    str(args.flood_connections),
                    "--max-seconds",
                    str(args.max_seconds),
                    "--flood-body-kb",
                    str(args.flood_body_kb),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert flooder.stdout is not None and flooder.stdin is not None
            await loop.run_in_executor(None, flooder.stdout.readline)  # {"ready": true}
            during = await loop.run_in_executor(None, load)
            flooder.stdin.write("stop\n")
            flooder.stdin.flush()
            line = await loop.run_in_executor(None, flooder.stdout.readline)
            summary = json.loads(line or "{}")
            flooder.wait(timeout=60)
            after = await loop.run_in_executor(None, load)
        finally:
            if flooder is not None and flooder.poll() is None:
                flooder.kill()
                flooder.wait()

    print(
        f"endpoint flood bench: {args.requests} requests x {args.concurrency} connections to "
        f"'quiet'; 'flooded' (capacity {SLOW_RPS}/s) sent {args.times}x that "
        f"({rate}/s) over {args.flood_connections} connections"
    )
    print(f"{'phase':<8} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    phases = (("before", before), ("flooded", during), ("after", after))
    for phase, r in phases:
        print(
            f"{phase:<8} {r['rps']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>7.0f}"
        )
    ratio = during["p50_ms"] / before["p50_ms"]
    for phase, r in phases[1:]:
        print(
            f"ratio {phase}/before: p50 x{r['p50_ms'] / before['p50_ms']:.2f}, "
            f"p99 x{r['p99_ms'] / before['p99_ms']:.2f}"
        )
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(summary.get("statuses", {}).items()))
    print(
        f"flooder: {summary.get('rps', 0):.0f} requests/s reached "
        f"(x{summary.get('rps', 0) / SLOW_RPS:.0f} capacity); answers {statuses}; "
        f"{summary.get('failed', '?')} failed, {summary.get('skipped', '?')} not sent "
        f"({args.flood_connections} in flight already)"
    )
    met = ratio <= 2.0
    print(
        f"target: quiet p50 while flooded <= 2x before: x{ratio:.2f}, {'met' if met else 'NOT met'}"
    )
    errors = sum(r["errors"] for _, r in phases)
    return 0 if errors == 0 and met else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--times", type=int, default=100, help="the flood, x capacity")
    parser.add_argument("--flood-connections", type=int, default=256)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument(
        "--flood-body-kb", type=int, default=0, help="each flood request's body (0: 24 bytes)"
    )
    parser.add_argument("--quick", action="store_true", help="500 requests")
    parser.add_argument("--flood-url", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood_url:
        asyncio.run(
            _flood(
                args.flood_url,
                args.rate,
                args.flood_connections,
                args.max_seconds,
                args.flood_body_kb,
            )
        )
        return
    if args.quick:
        args.requests = 500
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(asyncio.run(_bench(args)))


if __name__ == "__main__":
    main()
