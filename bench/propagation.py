"""Propagation: operator A applies a traffic change; how long until operator B's dashboard,
another process, shows it. Local workspace; target <= 1 s.

    python bench/propagation.py [-n 20]

A real control plane in a temporary MODELDECK_HOME; an endpoint with two deployments.
Operator B is the real dashboard (``python -m modeldeck``) in a pseudo-terminal (120x40)
on the Endpoints list. Operator A is a workspace client in this process: each change
sets a split not shown before (``blue=B green=100-B``), 0.1-2.1 s (at random) after B
showed the previous one, so changes land anywhere in B's 2 s poll cycle; the time is
from A starting the apply to the split's text arriving on B's terminal. Printed:
p50/p95 over ``-n`` changes for B as it is (it awaits the control plane's ``/v1/watch``
long poll and fetches at once) and for the baseline, B with ``MODELDECK_WATCH=0`` (it
polls every 2 s, as before), and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench/_common; tests/support, shared with the tests
from _common import daemon_home  # noqa: E402
from _tui_pty import Pty, percentile  # noqa: E402

ENDPOINT = "ep-prop"
EXAMPLES = HERE.parent / "examples"


async def setup() -> None:
    from modeldeck.services.api.domain import EndpointPatch, EndpointSpec
    from modeldeck.services.local.client import LocalWorkspace

    from tests.tui.conftest import deployment_spec, ensure_cluster, ensure_model

    ws = LocalWorkspace()
    try:
        await ensure_cluster(ws)
        await ensure_model(ws)
        await (await ws.create_endpoint(EndpointSpec(name=ENDPOINT, compute="pool-a"))).wait()
        for name in ("blue", "green"):
            await (await ws.create_deployment(deployment_spec(name, ENDPOINT, name))).wait()
        patch = EndpointPatch(traffic={"blue": 100, "green": 0})
        await (await ws.update_endpoint(ENDPOINT, patch)).wait()
    finally:
        await ws.close()


async def changes(pty: Pty, n: int, seed: int) -> tuple[list[float], list[float]]:
    """(apply start -> shown on B, apply acknowledged -> shown on B), seconds."""
    from modeldeck.services.api.domain import EndpointPatch
    from modeldeck.services.local.client import LocalWorkspace

    rnd = random.Random(seed)
    ws = LocalWorkspace(autostart=False)
    start_to_shown: list[float] = []
    ack_to_shown: list[float] = []
    try:
        for i in range(n):
            await asyncio.sleep(rnd.uniform(0.1, 2.1))  # anywhere in a 2 s poll cycle
            blue = 30 + (i % 40)
            text = f"blue={blue} green={100 - blue}"
            mark = pty.mark
            started = time.perf_counter()
            handle = await ws.update_endpoint(
                ENDPOINT, EndpointPatch(traffic={"blue": blue, "green": 100 - blue})
            )
            acked = time.perf_counter()
            shown = await asyncio.to_thread(pty.wait_for, text, mark, 30.0)
            await handle.wait()
            start_to_shown.append(shown - started)
            ack_to_shown.append(shown - acked)
    finally:
        await ws.close()
    return start_to_shown, ack_to_shown


def run(n: int, watch: bool) -> tuple[list[float], list[float]]:
    env = {} if watch else {"MODELDECK_WATCH": "0"}
    pty = Pty([sys.executable, "-m", "modeldeck"], env=env)
    try:
        pty.wait_for(ENDPOINT, timeout=60)  # B shows the endpoint
        time.sleep(1.0)
        return asyncio.run(changes(pty, n, seed=13))
    finally:
        pty.close()


def line(label: str, values: list[float]) -> str:
    p50, p95 = statistics.median(values) * 1000, percentile(values, 95) * 1000
    return f"{label:<44} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20)
    args = parser.parse_args()
    with daemon_home("mdprop"):
        asyncio.run(setup())
        base, base_ack = run(args.n, watch=False)
        push, push_ack = run(args.n, watch=True)
    print(f"{args.n} traffic changes by operator A, shown on operator B's dashboard:")
    print(line("baseline: B polls every 2 s (MODELDECK_WATCH=0)", base))
    print(line("B awaits /v1/watch (a long poll)", push))
    print(line("  the same, from A's apply acknowledged", push_ack))
    print(line("  baseline, from A's apply acknowledged", base_ack))
    ratio = percentile(push, 95) / percentile(base, 95)
    print(f"ratio p95 watch / poll: {ratio:.2f}   (target: p95 <= 1000 ms)")


if __name__ == "__main__":
    main()
