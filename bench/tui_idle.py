"""Idle: CPU and terminal output of the dashboard when nothing changes, as a ratio to a
bare Textual app with one Label.

The dashboard runs as a user runs it (``python -m modeldeck``) on a real local workspace
(a pool, a registered model, an endpoint with one live deployment: nothing changing),
so its polls (one per view every 2 s) are included. Both run in a real pseudo-terminal;
after they settle, CPU time and bytes written are taken over the same window.
Target: <= 2% of a core, almost nothing written. Usage: ``python bench/tui_idle.py [-s 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
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


def measure(
    argv: list[str], needle: str, seconds: float, env: dict[str, str]
) -> tuple[float, float]:
    pty = Pty(argv, env=env)
    try:
        pty.wait_for(needle, timeout=60)
        time.sleep(3.0)  # settle
        c0, b0, t0 = cpu_seconds(pty.proc.pid), sum(n for _, n in pty.chunks), time.perf_counter()
        time.sleep(seconds)
        c1, b1, t1 = cpu_seconds(pty.proc.pid), sum(n for _, n in pty.chunks), time.perf_counter()
        return (c1 - c0) / (t1 - t0) * 100, (b1 - b0) / (t1 - t0)
    finally:
        pty.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-s", "--seconds", type=float, default=20.0)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="mdi")
    os.environ["MODELDECK_HOME"] = home
    env = {"MODELDECK_HOME": home}
    from modeldeck.services.local.controlplane import daemon

    daemon.ensure_daemon()
    try:
        asyncio.run(populate())
        bare_cpu, bare_bytes = measure(
            [sys.executable, APP, "bare-label"], "hello bare", args.seconds, env
        )
        ours_cpu, ours_bytes = measure(
            [sys.executable, "-m", "modeldeck"], "my-endpoint", args.seconds, env
        )
        print(
            f"bare Textual app, idle:            CPU {bare_cpu:.2f}% of a core, {bare_bytes:.0f} bytes/s written"
        )
        print(
            f"modeldeck endpoints view, idle:    CPU {ours_cpu:.2f}% of a core, {ours_bytes:.0f} bytes/s written  (target <= 2%)"
        )
        print(f"ratio CPU modeldeck / bare: {ours_cpu / max(bare_cpu, 0.01):.2f}")
    finally:
        daemon.stop_daemon()


if __name__ == "__main__":
    main()
