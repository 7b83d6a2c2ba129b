"""Dashboard cold start to first frame, as a ratio to a bare Textual app with one Label.

Both are launched the same way: a fresh Python process in a real pseudo-terminal
(120x40); the time is from spawn until the first frame's text reaches the terminal
(the top bar for modeldeck, the label for the bare app). ``modeldeck`` is run as a
user runs it (``python -m modeldeck``, no arguments) on a local workspace whose
control plane is already running. Runs alternate; medians and their ratio are printed
(target <= 1.15, issue 17; it was 1.5). Usage: ``python bench/tui_cold_start.py [-n 9]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tui_pty import APP, Pty


def first_frame(argv: list[str], needle: str, env: dict[str, str]) -> float:
    pty = Pty(argv, env=env)
    try:
        return pty.wait_for(needle, timeout=60) - pty.started
    finally:
        pty.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=9)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="mdb")
    env = {"MODELDECK_HOME": home}
    os.environ["MODELDECK_HOME"] = home
    from modeldeck.services.local.controlplane import daemon

    daemon.ensure_daemon()
    try:
        bare_cmd = [sys.executable, APP, "bare-label"]
        ours_cmd = [sys.executable, "-m", "modeldeck"]
        first_frame(bare_cmd, "hello bare", env)  # warm the file cache for both
        first_frame(ours_cmd, "workspace", env)
        bare: list[float] = []
        ours: list[float] = []
        for _ in range(args.n):
            bare.append(first_frame(bare_cmd, "hello bare", env))
            ours.append(first_frame(ours_cmd, "workspace", env))
        b, o = statistics.median(bare), statistics.median(ours)
        print(
            f"bare Textual app (one Label): median {b * 1000:.0f} ms  (runs: {', '.join(f'{x * 1000:.0f}' for x in bare)})"
        )
        print(
            f"modeldeck dashboard:          median {o * 1000:.0f} ms  (runs: {', '.join(f'{x * 1000:.0f}' for x in ours)})"
        )
        print(f"ratio modeldeck / bare: {o / b:.2f}  (target <= 1.15)")
    finally:
        daemon.stop_daemon()


if __name__ == "__main__":
    main()
