"""Keypress to rendered change, p95, while the log view streams 2,000 lines/s and metrics
tick at 1 Hz — as a ratio to the same keypress in a bare Textual app with one Label.

Both run in a real pseudo-terminal (120x40). The key is ``f`` (follow/pause): the time is
from writing the key to the terminal until the changed status text ("paused" /
"following") arrives from the app. The dashboard's screens are fed directly with domain
objects (widget level: 20 log lines every 10 ms, a metrics sample per deployment each
second), so this measures the UI, not the control plane. Target p95 <= 20 ms (issue 17).
Usage: ``python bench/tui_keypress.py [-n 40]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tui_pty import app, percentile


def latencies(mode: str, words: tuple[str, str], n: int, warmup: float) -> list[float]:
    pty = app(mode)
    try:
        pty.wait_for(words[1], timeout=60)
        time.sleep(warmup)
        out: list[float] = []
        state = 1
        for _ in range(n):
            state = 1 - state
            mark = pty.mark
            sent = pty.send("f")
            shown = pty.wait_for(words[state], since=mark, timeout=10)
            out.append(shown - sent)
            time.sleep(0.05)
        return out
    finally:
        pty.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=40)
    args = parser.parse_args()
    bare = latencies("bare-label", ("paused", "following"), args.n, 0.5)
    ours = latencies("logs-load", ("paused", "following"), args.n, 2.0)
    b95, o95 = percentile(bare, 95), percentile(ours, 95)
    print(
        f"bare Textual app, idle:          p50 {statistics.median(bare) * 1000:.1f} ms  p95 {b95 * 1000:.1f} ms"
    )
    print(
        f"modeldeck logs 2,000 lines/s + metrics 1 Hz: p50 {statistics.median(ours) * 1000:.1f} ms  p95 {o95 * 1000:.1f} ms  (target p95 <= 20 ms)"
    )
    print(f"ratio p95 modeldeck / bare: {o95 / b95:.2f}")


if __name__ == "__main__":
    main()
