"""Rollback time: from a rollout's treatment starting to fail to the traffic back on the
control, as a ratio to the rollout's interval. Local workspace; target: every round <= 1.2.

    python bench/rollout_analysis.py [--rounds 8] [--interval 2] [--rate 50] [--seed 14]

A real control plane in a temporary MODELDECK_HOME; an endpoint with a control (blue, all the
traffic) and a treatment (green, tests/support/flaky/score.py: it answers 500 to 3 requests in
10 once its flag file exists), one replica each; ``--rate`` requests a second through the real
gateway with the endpoint's key (tests/support/load.py) for the whole run. Each round starts a
rollout of green (tests/support/rollouts.py's acceptance_spec: steps 10,25,50,100, min_requests
10, max_p95_ratio 5; ``--interval`` seconds), waits for the 25% step and makes the flag at a
random moment within it (seeded), then waits for the verdict. Measured per round: the rollback as the control plane records it (the Failed
rollout's ``finished_at``) less the flag's making, and as the traffic shows it (the first
request after the last one green served), both over the interval; and the failed requests
among those sent after the rollback was recorded (must be 0). Then the flag goes, the next round.

Baseline: the interval itself (ratio 1: a verdict one whole step after the failure began, the
issue's "within one interval"). Printed: each round, the median and the worst.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench/_common; tests/support, shared with the tests
from _common import daemon_home  # noqa: E402

ENDPOINT = "ep-rollback"
TARGET = 1.2
ROUND_S = 90.0  # a round that takes longer is a hang


async def rounds(n: int, interval: float, rate: float, seed: int) -> list[tuple[float, float, int]]:
    """(recorded / interval, observed / interval, failed after the rollback) per round."""
    from modeldeck.services.api.rollouts import RolloutState
    from modeldeck.services.local.client import LocalWorkspace

    from tests.support.load import Load
    from tests.support.rollouts import (
        TREATMENT,
        acceptance_spec,
        finished,
        flaky_pair,
        rollout_until,
    )

    rnd = random.Random(seed)
    flag = Path(tempfile.mkdtemp(prefix="mdflag")) / "fail-now"
    spec = acceptance_spec(ENDPOINT, interval)
    out: list[tuple[float, float, int]] = []
    async with LocalWorkspace(poll_interval=0.05) as ws:
        ep, keys = await flaky_pair(ws, ENDPOINT, flag)
        budget = n * ROUND_S + 60
        async with Load(ep.scoring_uri, keys.primaryKey, rate=rate, max_seconds=budget) as load:
            await load.wait_for(20)
            for i in range(n):
                flag.unlink(missing_ok=True)
                await ws.start_rollout(spec)
                at_25 = await rollout_until(ws, ENDPOINT, lambda r: r.weight >= 25 or finished(r))
                if at_25.state is not RolloutState.RUNNING:
                    raise SystemExit(f"round {i + 1}: the rollout ended before 25%: {at_25}")
                moment = at_25.step_started_at + rnd.uniform(0.0, interval)
                await asyncio.sleep(max(0.0, moment - time.time()))
                failing_since = time.time()
                flag.touch()
                done = await rollout_until(ws, ENDPOINT, finished, timeout=ROUND_S)
                if done.state is not RolloutState.FAILED or done.finished_at is None:
                    raise SystemExit(f"round {i + 1}: not rolled back: {done}")
                sent = len(load.records)
                await load.wait_for(sent + int(rate), timeout=30)  # a second after the verdict
                answers = load.since(failing_since)
                last_green = max(
                    (k for k, r in enumerate(answers) if r.deployment == TREATMENT), default=-1
                )
                back = answers[last_green + 1].sent_at if last_green + 1 < len(answers) else None
                recorded = (done.finished_at - failing_since) / interval
                observed = (back - failing_since) / interval if back else float("nan")
                failed = sum(r.failed for r in load.since(done.finished_at))
                out.append((recorded, observed, failed))
                print(
                    f"round {i + 1:2}: flag {moment - at_25.step_started_at:4.2f} s into 25%, "
                    f"rolled back at {done.phase}: recorded {recorded:.2f}, traffic "
                    f"{observed:.2f} intervals; failed after rollback {failed}",
                    flush=True,
                )
    flag.unlink(missing_ok=True)
    flag.parent.rmdir()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8, choices=range(1, 21), metavar="1-20")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    with daemon_home("mdra"):
        results = asyncio.run(rounds(args.rounds, args.interval, args.rate, args.seed))
    recorded = [r for r, _, _ in results]
    observed = [o for _, o, _ in results]
    failed = sum(f for _, _, f in results)
    print(
        f"{len(results)} rollbacks, interval {args.interval:g} s, {args.rate:g} requests/s; "
        "time from failing to traffic back on the control, over the interval (baseline 1.0):"
    )
    print(
        f"  recorded by the control plane: median {statistics.median(recorded):.2f}  worst {max(recorded):.2f}"
    )
    print(
        f"  seen in the traffic:           median {statistics.median(observed):.2f}  worst {max(observed):.2f}"
    )
    print(f"  failed requests after the rollback: {failed}   (must be 0)")
    verdict = "met" if max(recorded) <= TARGET and failed == 0 else "NOT met"
    print(f"target: worst <= {TARGET} and 0 failed after rollback: {verdict}")


if __name__ == "__main__":
    main()
