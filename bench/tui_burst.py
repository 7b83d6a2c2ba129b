"""A burst of 100,000 log lines into the log view: the longest frame gap and memory,
as a ratio to Textual's own Log widget (20,000 lines kept) taking the same burst.

Both run in a real pseudo-terminal; ``b`` starts the burst (lines fed in chunks of 1,000
as fast as the app takes them; the dashboard's view is fed directly with LogLine objects,
widget level). A frame gap is the time between two consecutive writes to the terminal
during the burst. RSS before and after shows memory stays bounded (the view keeps
20,000 lines). Target: no gap over 200 ms. Usage: ``python bench/tui_burst.py [-n 100000]``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tui_pty import app, percentile, rss_mb


def burst(mode: str, ready: str, n: int) -> tuple[float, float, float, float, float]:
    pty = app(mode, str(n))
    try:
        pty.wait_for(ready, timeout=60)
        time.sleep(1.0)
        before = rss_mb(pty.proc.pid)
        mark = pty.mark
        start = pty.send("b")
        end = pty.wait_for("burst done", since=mark, timeout=300)
        times = [t for t, _ in pty.chunks if start <= t <= end]
        gaps = [b - a for a, b in itertools.pairwise(times)] or [end - start]
        after = rss_mb(pty.proc.pid)
        return max(gaps), percentile(gaps, 95), end - start, before, after
    finally:
        pty.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=100_000)
    args = parser.parse_args()
    b = burst("bare-log", "bare log ready", args.n)
    o = burst("burst", "Follow/pause", args.n)
    for name, r in (("Textual Log widget (bare)", b), ("modeldeck log view", o)):
        print(
            f"{name:<26} longest frame gap {r[0] * 1000:.0f} ms, p95 gap {r[1] * 1000:.0f} ms, "
            f"burst took {r[2]:.1f} s, RSS {r[3]:.0f} -> {r[4]:.0f} MB"
        )
    print(
        f"target: no frame gap over 200 ms; ratio longest gap modeldeck / bare: {o[0] / b[0]:.2f}; "
        f"RSS growth modeldeck {o[4] - o[3]:.0f} MB vs bare {b[4] - b[3]:.0f} MB"
    )


if __name__ == "__main__":
    main()
