"""Idle: the dashboard's requests to the control plane and its CPU when nothing changes,
per view shown, beside the same views polled only (``MODELDECK_WATCH=0``, as a back end
without a watch is) and a bare Textual app with one Label.

The dashboard runs as a user runs it (``python -m modeldeck``) in a real pseudo-terminal
on a real local workspace (a pool, a registered model, an endpoint with one live
deployment: nothing changing). Its control socket is a counting relay to the daemon's
(the client opens one connection per request, so a connection is a request). Views, in
order: Endpoints, Models (``4``), History (``1`` then ``h``), Metrics (``5``), Logs over
the Metrics (``:logs my-endpoint/blue``: the metrics under it are hidden). Each is left to
settle, then requests and CPU seconds are taken over the same window.
Target: <= 2% of a core on the Endpoints view. Usage: ``python bench/tui_idle.py [-s 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tui_pty import APP, Pty, cpu_seconds

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


async def populate() -> None:
    from modeldeck.services.api.domain import (
        ClusterSpec,
        CodeConfiguration,
        DeploymentSpec,
        EndpointSpec,
        ModelSpec,
        Resources,
        ResourceSet,
    )
    from modeldeck.services.local.client import LocalWorkspace

    ws = LocalWorkspace()
    try:
        await (await ws.create_cluster(ClusterSpec(name="pool-a"))).wait()
        await ws.create_model(ModelSpec(name="sklearn-demo", path=str(EXAMPLES / "model")))
        await (await ws.create_endpoint(EndpointSpec(name="my-endpoint", compute="pool-a"))).wait()
        spec = DeploymentSpec(
            "blue",
            "my-endpoint",
            "azureml:sklearn-demo:1",
            CodeConfiguration(str(EXAMPLES / "blue"), "score.py"),
            resources=Resources(requests=ResourceSet(cpu=0.25, memory_gb=0.25)),
        )
        await (await ws.create_deployment(spec, all_traffic=True)).wait()
    finally:
        await ws.close()


class Relay:
    """A Unix socket that relays each connection to the daemon's and notes its request
    line's path (the time it came and the path without its query)."""

    def __init__(self, listen: Path, target: Path) -> None:
        self.listen, self.target = listen, target
        self.requests: list[tuple[float, str]] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.start_unix_server(self._serve, str(self.listen)))
        ready.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.readline()
        parts = first.split()
        path = parts[1].decode().split("?")[0] if len(parts) > 1 else "?"
        self.requests.append((time.perf_counter(), path))
        up_r, up_w = await asyncio.open_unix_connection(str(self.target))
        up_w.write(first)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    def between(self, t0: float, t1: float) -> collections.Counter[str]:
        return collections.Counter(p for t, p in list(self.requests) if t0 <= t < t1)


#: (view, keys to reach it from the previous one, text that says it is shown)
VIEWS = [
    ("Endpoints", "", "my-endpoint"),
    ("Models", "4", "sklearn-demo"),
    ("History", "1h", "History my-endpoint"),
    ("Metrics", "5", "REQ/S"),
    ("Logs over Metrics", ":logs my-endpoint/blue\r", "Logs my-endpoint/blue"),
]


def run_views(
    relay: Relay, seconds: float, env: dict[str, str]
) -> list[tuple[str, float, float, collections.Counter[str]]]:
    """Per view: requests/min, CPU seconds/min, requests by path."""
    pty = Pty([sys.executable, "-m", "modeldeck"], env=env)
    out = []
    try:
        for name, keys, needle in VIEWS:
            mark = pty.mark
            for key in keys if len(keys) < 3 else [keys]:
                pty.send(key)
                time.sleep(0.3)
            pty.wait_for(needle, since=mark, timeout=60)
            time.sleep(3.0)  # settle: the first fetches of the view
            c0, t0 = cpu_seconds(pty.proc.pid), time.perf_counter()
            time.sleep(seconds)
            c1, t1 = cpu_seconds(pty.proc.pid), time.perf_counter()
            per_min = 60 / (t1 - t0)
            paths = relay.between(t0, t1)
            out.append((name, sum(paths.values()) * per_min, (c1 - c0) * per_min, paths))
    finally:
        pty.close()
    return out


def bare_cpu(seconds: float, env: dict[str, str]) -> float:
    pty = Pty([sys.executable, APP, "bare-label"], env=env)
    try:
        pty.wait_for("hello bare", timeout=60)
        time.sleep(3.0)
        c0, t0 = cpu_seconds(pty.proc.pid), time.perf_counter()
        time.sleep(seconds)
        return (cpu_seconds(pty.proc.pid) - c0) * 60 / (time.perf_counter() - t0)
    finally:
        pty.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-s", "--seconds", type=float, default=20.0, help="per view")
    parser.add_argument("-v", "--verbose", action="store_true", help="requests by path")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="mdi")
    os.environ["MODELDECK_HOME"] = home
    from modeldeck.services import paths
    from modeldeck.services.local.controlplane import daemon

    daemon.ensure_daemon()
    try:
        asyncio.run(populate())
        # the dashboard's own home: its state directory holds the relay, not a daemon
        relayed = tempfile.mkdtemp(prefix="mdr")
        os.chmod(relayed, 0o700)
        sock_dir = paths.private_dir(Path(relayed) / "state")
        relay = Relay(sock_dir / "modeldeck.sock", paths.state_dir() / "modeldeck.sock")
        env = {"MODELDECK_HOME": relayed}
        bare = bare_cpu(args.seconds, env)
        polled = run_views(relay, args.seconds, {**env, "MODELDECK_WATCH": "0"})
        ours = run_views(relay, args.seconds, env)
        print(f"bare Textual app, idle: CPU {bare:.2f} s/min")
        print(f"{'view':<20} {'requests/min':>24} {'CPU s/min':>22}")
        print(
            f"{'':<20} {'polled only':>12} {'as shipped':>11} {'polled only':>11} {'as shipped':>10}"
        )
        for (name, p_req, p_cpu, p_paths), (_, o_req, o_cpu, o_paths) in zip(
            polled, ours, strict=True
        ):
            print(f"{name:<20} {p_req:12.1f} {o_req:11.1f} {p_cpu:11.2f} {o_cpu:10.2f}")
            if args.verbose:
                print(f"    polled: {dict(p_paths)}\n    shipped: {dict(o_paths)}")
        endpoints_cpu = ours[0][2] / 60 * 100
        print(f"Endpoints view, as shipped: {endpoints_cpu:.2f}% of a core (target <= 2%)")
    finally:
        daemon.stop_daemon()


if __name__ == "__main__":
    main()
