"""Latency of an endpoint before, during and after 2,000 idle connections to the gateway.

    python bench/idle_flood.py [--connections 2000] [--requests 2000] [--concurrency 4]
                               [--same-address] [--quick]

One real replica (a no-op scoring script) behind the real gateway, with the gateway's
default connection limits (header_timeout 10 s, keepalive 30 s, 512 per client, 4096 in
all). A flooder process holds N idle connections open: it connects, sends nothing, and
connects again whenever the gateway closes one (as an attacker would), from 127.0.0.2..
(under the per-client bound, so all N are held) or, with --same-address, from
127.0.0.1 like every other local user of a shared host. A load generator (a process of
its own, bench/gateway.py's) sends N requests with the key over C connections, before
the flood, while it is held ("held"), again from 0.5 s before the header timeout closes
it, with 3 x N requests ("churn": the gateway's closing and the flooder's reconnecting
fall in it) and after it; it prints p50/p99 of each and the ratios to "before".
Bounded: the flooder stops after --max-seconds (120) or when told, and opens at most
20 x N connections in all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import KEY, NOOP, serve_script, sibling


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard)
        )


# --------------------------------------------------------------------------- the flooder


async def _flood(port: int, connections: int, sources: list[str], max_seconds: float) -> None:
    """Hold ``connections`` idle connections; reopen each one the gateway closes."""
    deadline = time.monotonic() + max_seconds
    budget = 20 * connections
    opened = closed = failed = 0
    live = 0
    stop = asyncio.Event()
    ready = asyncio.Event()

    async def one(i: int) -> None:
        nonlocal opened, closed, failed, live, budget
        source = sources[i % len(sources)]
        while not stop.is_set() and budget > 0:
            budget -= 1
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(source, 0)
                )
            except OSError:
                failed += 1
                await asyncio.sleep(0.1)
                continue
            opened += 1
            live += 1
            if live >= connections:
                ready.set()
            reading = asyncio.ensure_future(reader.read())
            waiting = asyncio.ensure_future(stop.wait())
            await asyncio.wait({reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
            reading.cancel()
            waiting.cancel()
            live -= 1
            writer.close()
            if not stop.is_set():
                closed += 1  # closed by the gateway: connect again

    async def control() -> None:
        loop = asyncio.get_running_loop()
        await ready.wait()
        print(json.dumps({"ready": live}), flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)  # "stop" or EOF
        del line
        stop.set()

    tasks = [asyncio.ensure_future(one(i)) for i in range(connections)]
    ctl = asyncio.ensure_future(control())
    await asyncio.wait({ctl}, timeout=max(0.0, deadline - time.monotonic()))
    stop.set()
    ctl.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"opened": opened, "closed_by_gateway": closed, "failed": failed}), flush=True)


# --------------------------------------------------------------------------- the bench


async def _bench(args: argparse.Namespace) -> int:
    from modeldeck.services.api.domain import RequestSettings
    from modeldeck.services.local.dataplane.gateway import Gateway
    from modeldeck.services.local.dataplane.logstore import LogStore
    from modeldeck.services.local.dataplane.supervisor import Supervisor

    gwbench = sibling("gateway")  # its load generator
    root = Path(tempfile.mkdtemp(prefix="md-bench-flood-"))
    sup = Supervisor(LogStore(root / "logs"), socket_dir=root / "sock")
    gw = Gateway("127.0.0.1", 0)
    await gw.start()
    loop = asyncio.get_running_loop()
    sources = (
        ["127.0.0.1"] if args.same_address else ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    )
    flooder: subprocess.Popen[str] | None = None
    try:
        settings = RequestSettings(
            request_timeout_ms=30000,
            max_concurrent_requests_per_instance=args.concurrency,
            max_queue_wait_ms=30000,
        )
        await serve_script(sup, gw, root, "ep", NOOP, args.concurrency, settings)
        url, auth = gw.scoring_uri("ep"), {"Authorization": f"Bearer {KEY}"}

        def load(requests: int = args.requests) -> dict[str, float]:
            return gwbench.run_load(url, args.concurrency, requests, auth)

        before = await loop.run_in_executor(None, load)
        flooder = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--flood-port",
                str(gw.port),
                "--connections",
                str(args.connections),
                "--sources",
                ",".join(sources),
                "--max-seconds",
                str(args.max_seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert flooder.stdout is not None and flooder.stdin is not None
        line = await loop.run_in_executor(None, flooder.stdout.readline)
        first = json.loads(line or "{}")  # {"ready": N}, or its summary if it gave up
        held_by_flooder = first.get("ready", 0)
        ready_at = loop.time()
        held = gw.connections.open_connections
        during = await loop.run_in_executor(None, load)  # the flood held open
        held_after_load = gw.connections.open_connections
        # again from shortly before the header timeout closes the flood, three times as
        # long: the gateway's closing and the flooder's reconnecting fall in this one
        timeout = gw.connections.limits.header_timeout
        await asyncio.sleep(max(0.0, ready_at + timeout - 0.5 - loop.time()))
        closed_before = gw.connections.totals["header"]
        churn = await loop.run_in_executor(None, load, 3 * args.requests)
        closed_in_churn = gw.connections.totals["header"] - closed_before
        flooder.stdin.write("stop\n")
        flooder.stdin.flush()
        summary = first if "opened" in first else {}
        summary = summary or json.loads(
            await loop.run_in_executor(None, flooder.stdout.readline) or "{}"
        )
        flooder.wait(timeout=60)
        after = await loop.run_in_executor(None, load)
    finally:
        if flooder is not None and flooder.poll() is None:
            flooder.kill()
            flooder.wait()
        totals = dict(gw.connections.totals)
        await gw.close()
        await sup.close()
        sup.logstore.close()
        shutil.rmtree(root, ignore_errors=True)

    print(
        f"idle flood bench: {args.requests} requests x {args.concurrency} connections to one "
        f"endpoint; flood of {args.connections} idle connections from {','.join(sources)}"
    )
    print(f"{'phase':<8} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    phases = (("before", before), ("held", during), ("churn", churn), ("after", after))
    for phase, r in phases:
        print(
            f"{phase:<8} {r['rps']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>7.0f}"
        )
    for phase, r in phases[1:]:
        print(
            f"ratio {phase}/before: p50 x{r['p50_ms'] / before['p50_ms']:.2f}, "
            f"p99 x{r['p99_ms'] / before['p99_ms']:.2f}"
        )
    print(
        f"gateway: {held} connections open when the flood was ready "
        f"(the flooder saw {held_by_flooder} connected), {held_after_load} after the load; "
        f"flooder: {summary.get('opened', '?')} opened, {summary.get('closed_by_gateway', '?')} "
        f"closed by the gateway, {summary.get('failed', '?')} failed to connect; "
        f"gateway counts: {', '.join(f'{k}={v}' for k, v in totals.items() if v)}; "
        f"{closed_in_churn} closed by the header timeout during the churn phase"
    )
    errors = sum(r["errors"] for _, r in phases)
    return 0 if errors == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument(
        "--same-address", action="store_true", help="flood from 127.0.0.1, as the load does"
    )
    parser.add_argument("--quick", action="store_true", help="500 requests")
    parser.add_argument("--flood-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sources", default="127.0.0.2", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _raise_nofile()
    if args.flood_port:
        asyncio.run(
            _flood(args.flood_port, args.connections, args.sources.split(","), args.max_seconds)
        )
        return
    if args.quick:
        args.requests = 500
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(asyncio.run(_bench(args)))


if __name__ == "__main__":
    main()
