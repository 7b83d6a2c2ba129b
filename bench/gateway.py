"""Gateway overhead: the same load straight to a replica and through the gateway, same run.

    python bench/gateway.py [--requests 1500] [--concurrency 8] [--quick]

For two scoring scripts (a no-op, and one that burns 2 ms of CPU per request) it
starts one real replica process (max 8 concurrent requests) and the real gateway
(key auth on, so the Authorization check is part of the cost), then runs a load
generator in its own process (aiohttp, N connections, a fixed number of requests)
against the replica directly (its Unix socket, the way the gateway reaches it) and
through the gateway (TCP on loopback), alternately, twice each; the
better run of each is kept. It prints throughput and p50/p99 latency, the ratios, and
the p50 added by the gateway at one connection. Beside them, in the same alternation, the
floor: the same load through a byte pipe (``pipe``: asyncio, TCP in, the replica's socket
out, no HTTP, no key check, no routing), what any proxy in a Python process costs here.

Targets (issue 17): the no-op script's throughput >= 0.6 of direct, the 2 ms CPU script's
>= 0.97; p50 added at one connection <= 0.3 ms for both.
Then the no-op script straight to a replica, the old aiohttp replica (``--old-replica
REV``, read with ``git show``) against the scoring host, alternately: the host's
throughput must be >= 0.9 of the old one's.
Note: the machine has 2 cores; load generator, gateway and replica compete for them,
so the gateway run has one more busy process than the direct run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import KEY, NOOP, serve_script

#: the least throughput through the gateway, as a share of direct, per script (issue 17)
TARGETS = {"noop": 0.6, "cpu2ms": 0.97}
CPU_2MS = """
import time
def init():
    pass
def run(raw_data):
    end = time.thread_time() + 0.002
    x = 0
    while time.thread_time() < end:
        x += 1
    return '{"ok": true}'
"""


# --------------------------------------------------------------------------- load generator


async def _load(
    url: str, concurrency: int, requests: int, headers: dict[str, str]
) -> dict[str, float]:
    import aiohttp

    body = b'{"data": [[1, 2, 3, 4]]}'
    latencies: list[float] = []
    errors = 0
    remaining = requests
    connector: aiohttp.BaseConnector
    if url.startswith("unix:"):  # a replica's socket: unix:PATH
        connector = aiohttp.UnixConnector(path=url[len("unix:") :], limit=0)
        url = "http://replica/score"
    else:
        connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(min(50, requests)):  # warm up connections and caches
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
    }


def _loadgen_main(args: argparse.Namespace) -> None:
    headers = json.loads(args.headers)
    result = asyncio.run(_load(args.url, args.concurrency, args.requests, headers))
    print(json.dumps(result))


def run_load(
    url: str, concurrency: int, requests: int, headers: dict[str, str]
) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--loadgen",
            url,
            "--concurrency",
            str(concurrency),
            "--requests",
            str(requests),
            "--headers",
            json.dumps(headers),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout)


# --------------------------------------------------------------------------- the floor


class _PipeOut(asyncio.Protocol):
    """The replica's side of a byte pipe: what it answers goes to the client as it is."""

    def __init__(self, client: asyncio.Transport) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.close()


class _PipeIn(asyncio.Protocol):
    """The client's side of a byte pipe to a replica's Unix socket: no parsing at all."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.out: asyncio.BaseTransport | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.connecting = asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        out, _ = await loop.create_unix_connection(
            lambda: _PipeOut(self.transport),  # type: ignore[arg-type]
            self.path,
        )
        self.out = out
        out.writelines(self.early)  # type: ignore[attr-defined]
        self.early = []

    def data_received(self, data: bytes) -> None:
        if self.out is None:
            self.early.append(data)
        else:
            self.out.write(data)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.out is not None:
            self.out.close()


# --------------------------------------------------------------------------- the bench


async def _bench(requests: int, concurrency: int, rounds: int) -> int:
    from modeldeck.services.api.domain import RequestSettings
    from modeldeck.services.local.dataplane.gateway import Gateway
    from modeldeck.services.local.dataplane.logstore import LogStore
    from modeldeck.services.local.dataplane.supervisor import Supervisor

    root = Path(tempfile.mkdtemp(prefix="md-bench-gw-"))
    sup = Supervisor(LogStore(root / "logs"), socket_dir=root / "sock")
    gw = Gateway("127.0.0.1", 0)
    await gw.start()
    settings = RequestSettings(
        request_timeout_ms=30000,
        max_concurrent_requests_per_instance=concurrency,
        max_queue_wait_ms=30000,
    )
    loop = asyncio.get_running_loop()
    ok = True
    print(
        f"gateway bench: {requests} requests x {concurrency} connections; better of {rounds} alternate runs"
    )
    print(f"{'script':<8} {'path':<8} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8}")
    try:
        for label, source in (("noop", NOOP), ("cpu2ms", CPU_2MS)):
            replica = await serve_script(sup, gw, root, label, source, concurrency, settings)
            direct_url = replica.address  # unix:PATH: the load generator posts to /score
            gw_url = gw.scoring_uri(label)
            sock_path = direct_url[len("unix:") :]
            pipe = await loop.create_server(functools.partial(_PipeIn, sock_path), "127.0.0.1", 0)
            pipe_url = f"http://127.0.0.1:{pipe.sockets[0].getsockname()[1]}/score"
            auth = {"Authorization": f"Bearer {KEY}"}

            def best(runs: list[dict[str, float]]) -> dict[str, float]:
                return max(runs, key=lambda run: run["rps"])

            direct_runs, gw_runs, pipe_runs = [], [], []
            for _ in range(rounds):
                direct_runs.append(
                    await loop.run_in_executor(
                        None, run_load, direct_url, concurrency, requests, {}
                    )
                )
                gw_runs.append(
                    await loop.run_in_executor(None, run_load, gw_url, concurrency, requests, auth)
                )
                pipe_runs.append(
                    await loop.run_in_executor(None, run_load, pipe_url, concurrency, requests, {})
                )
            d, g, fl = best(direct_runs), best(gw_runs), best(pipe_runs)
            for path, r in (("direct", d), ("gateway", g), ("pipe", fl)):
                print(
                    f"{label:<8} {path:<8} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
                )
            errors = sum(r["errors"] for r in direct_runs + gw_runs)
            # added latency at one connection (no queueing): median of alternate runs
            one = max(300, requests // 3)
            d1, g1, p1 = [], [], []
            for _ in range(3):
                d1.append(await loop.run_in_executor(None, run_load, direct_url, 1, one, {}))
                g1.append(await loop.run_in_executor(None, run_load, gw_url, 1, one, auth))
                p1.append(await loop.run_in_executor(None, run_load, pipe_url, 1, one, {}))
            pipe.close()
            d1_p50 = statistics.median(r["p50_ms"] for r in d1)
            g1_p50 = statistics.median(r["p50_ms"] for r in g1)
            p1_p50 = statistics.median(r["p50_ms"] for r in p1)
            added = g1_p50 - d1_p50
            print(
                f"{label:<8} 1 conn   p50 direct {d1_p50:.2f} ms, gateway {g1_p50:.2f} ms, "
                f"pipe {p1_p50:.2f} ms (median of 3 runs each)"
            )
            ratio = g["rps"] / d["rps"]
            print(
                f"{label:<8} ratio    throughput gateway/direct = {ratio:.2f}; "
                f"p50 x{g['p50_ms'] / d['p50_ms']:.2f}, p99 x{g['p99_ms'] / d['p99_ms']:.2f} "
                f"at {concurrency} connections; p50 added at 1 connection = {added:.2f} ms; errors = {errors}"
            )
            print(
                f"{label:<8} floor    a byte pipe in its place: throughput pipe/direct = "
                f"{fl['rps'] / d['rps']:.2f}; p50 added at 1 connection = {p1_p50 - d1_p50:.2f} ms"
            )
            least = TARGETS[label]
            met = ratio >= least and added <= 0.3
            ok = ok and met
            print(
                f"target ({label}): throughput >= {least} and added p50 <= 0.3 ms: "
                f"{'met' if met else 'NOT met'}"
            )
            await sup.stop(replica, grace=2.0)
    finally:
        await gw.close()
        await sup.close()
        sup.logstore.close()
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


# --------------------------------------------------------------------------- old vs new replica

#: the last commit whose services/local/replica.py was the aiohttp replica (issue 10
#: replaced it by services/scoring/host.py)
OLD_REPLICA_REV = "7cc2b93"


def _start_direct(argv: list[str], sock: str) -> subprocess.Popen:
    """A replica process on ``sock``, started by hand (no supervisor), once GET / answers."""
    import http.client
    import socket as socket_mod

    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"replica exited with code {proc.returncode}: {argv}")
        try:
            conn = http.client.HTTPConnection("replica", timeout=5)
            conn.sock = socket_mod.socket(socket_mod.AF_UNIX, socket_mod.SOCK_STREAM)
            conn.sock.connect(sock)
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"replica did not answer within 60 s: {argv}")


def compare_replicas(requests: int, concurrency: int, rounds: int, rev: str) -> bool:
    """The no-op script's throughput straight to a replica: the old aiohttp replica (``git
    show REV:services/local/replica.py``) and the scoring host, alternately, same load."""
    repo = Path(__file__).resolve().parent.parent
    from modeldeck.services.scoring import HOST

    old_source = subprocess.run(
        ["git", "-C", str(repo), "show", f"{rev}:services/local/replica.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    root = Path(tempfile.mkdtemp(prefix="md-bench-rep-"))
    try:
        (root / "model").mkdir()
        (root / "code").mkdir()
        (root / "code" / "score.py").write_text(textwrap.dedent(NOOP))
        (root / "old_replica.py").write_text(old_source)
        common = ["--code-dir", str(root / "code"), "--scoring-script", "score.py"]
        common += ["--model-dir", str(root / "model"), "--max-concurrency", str(concurrency)]
        kinds = {
            "old": [sys.executable, str(root / "old_replica.py")],
            "host": [sys.executable, str(HOST)],
        }
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        for _ in range(rounds):
            for kind, argv in kinds.items():
                sock = str(root / f"{kind}.sock")
                proc = _start_direct([*argv, *common, "--socket", sock], sock)
                try:
                    runs[kind].append(run_load(f"unix:{sock}", concurrency, requests, {}))
                finally:
                    proc.terminate()
                    proc.wait(10)
        best = {k: max(v, key=lambda run: run["rps"]) for k, v in runs.items()}
        for kind, r in best.items():
            label = f"old aiohttp replica ({rev})" if kind == "old" else "scoring host"
            print(
                f"noop direct {label:<34} {r['rps']:>7.0f} rps  p50 {r['p50_ms']:.2f} ms  "
                f"p99 {r['p99_ms']:.2f} ms  errors {r['errors']:.0f}"
            )
        ratio = best["host"]["rps"] / best["old"]["rps"]
        met = ratio >= 0.9
        print(
            f"target: scoring host no-op throughput >= 0.9 of the old replica's: {ratio:.2f}, "
            f"{'met' if met else 'NOT met'}"
        )
        return met
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--old-replica",
        default=OLD_REPLICA_REV,
        metavar="REV",
        help="also compare the no-op replica's own throughput with the aiohttp replica of REV",
    )
    parser.add_argument("--no-old-replica", action="store_true", help="skip that comparison")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="300 requests, one round")
    parser.add_argument("--loadgen", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--headers", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        args.url = args.loadgen
        _loadgen_main(args)
        return
    if args.quick:
        args.requests, args.rounds = 300, 1
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    code = asyncio.run(_bench(args.requests, args.concurrency, args.rounds))
    if not args.no_old_replica:
        met = compare_replicas(
            args.requests, args.concurrency, max(2, args.rounds), args.old_replica
        )
        code = code or (0 if met else 1)
    sys.exit(code)


if __name__ == "__main__":
    main()
