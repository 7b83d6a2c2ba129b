"""10,000 deployments in the table: filter keystroke to render, and memory.

The dashboard's deployments view holds 10,000 deployments (fed directly with domain
objects, widget level); ``/`` opens the filter and ``blue-1`` is typed one key at a time.
The time is from writing each key to the terminal until the filtered count for that
pattern ("filter /blu: N of 10000") arrives. Baseline, in the same run: a bare Textual
app whose Input echoes each key into a Label. RSS of both after loading. Targets (issue 17): p95
<= 50 ms, RSS <= 120 MB. Usage: ``python bench/tui_table.py [-n 10000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tui_pty import app, percentile, rss_mb

PATTERN = "blue-1"


def ours(n: int, rounds: int) -> tuple[list[float], float]:
    pty = app("table", str(n))
    try:
        pty.wait_for(f"{n} deployments", timeout=120)
        out: list[float] = []
        for _ in range(rounds):
            mark = pty.mark
            pty.send("/")
            pty.wait_for("filter: regex", since=mark)
            for i in range(1, len(PATTERN) + 1):
                mark = pty.mark
                sent = pty.send(PATTERN[i - 1])
                out.append(pty.wait_for(f"/{PATTERN[:i]}: ", since=mark) - sent)
                time.sleep(0.05)
            mark = pty.mark
            pty.send("\x1b")  # Esc: clear the filter
            pty.wait_for(f"{n} deployments", since=mark)
            time.sleep(0.3)
        return out, rss_mb(pty.proc.pid)
    finally:
        pty.close()


def bare(rounds: int) -> tuple[list[float], float]:
    pty = app("bare-input")
    try:
        pty.wait_for("filter none", timeout=60)
        out: list[float] = []
        typed = ""
        for _ in range(rounds):
            for ch in PATTERN:
                typed += ch
                mark = pty.mark
                sent = pty.send(ch)
                out.append(pty.wait_for(f"/{typed}: done", since=mark) - sent)
                time.sleep(0.05)
        return out, rss_mb(pty.proc.pid)
    finally:
        pty.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    b, b_rss = bare(args.rounds)
    o, o_rss = ours(args.n, args.rounds)
    b95, o95 = percentile(b, 95), percentile(o, 95)
    print(
        f"bare Textual Input echo:           p50 {statistics.median(b) * 1000:.1f} ms  p95 {b95 * 1000:.1f} ms  RSS {b_rss:.0f} MB"
    )
    print(
        f"modeldeck, {args.n} deployments, /filter: p50 {statistics.median(o) * 1000:.1f} ms  p95 {o95 * 1000:.1f} ms  "
        f"RSS {o_rss:.0f} MB  (targets: p95 <= 50 ms, RSS <= 120 MB)"
    )
    print(f"ratio p95 modeldeck / bare: {o95 / b95:.2f}   ratio RSS: {o_rss / b_rss:.2f}")


if __name__ == "__main__":
    main()
