"""CLI cold start: ``modeldeck endpoint list -o json`` against a running daemon, as a ratio
to ``python -c "import httpx"`` (target <= 1.5, issue 17; it was 2).

A daemon is started in a temporary MODELDECK_HOME with a pool and a few endpoints; then
both commands run alternately N times (so both see the same machine load) and the medians
and their ratio are printed. Usage: ``python bench/cli.py [-n 21]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support, shared with the tests
from tests.support.cli import modeldeck_command


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=21, help="runs of each command (default 21)")
    parser.add_argument("--endpoints", type=int, default=3, help="endpoints to list (default 3)")
    opts = parser.parse_args()
    md = modeldeck_command()
    with tempfile.TemporaryDirectory(prefix="mdb") as home:
        # Byte-code caching on, in a private prefix (this sandbox sets PYTHONDONTWRITEBYTECODE,
        # which would make every run compile modeldeck from source; an install has .pyc files).
        env = {**os.environ, "MODELDECK_HOME": home, "PYTHONPYCACHEPREFIX": f"{home}/pyc"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        setup = [["cluster", "create", "--name", "benchpool", "-o", "none"]]
        setup += [
            [
                "endpoint",
                "create",
                "--name",
                f"bench-{i}",
                "--set",
                "compute=benchpool",
                "-o",
                "none",
            ]
            for i in range(opts.endpoints)
        ]
        try:
            for args in setup:
                subprocess.run([*md, *args], env=env, check=True)
            target = [*md, "endpoint", "list", "-o", "json"]
            baseline = [sys.executable, "-c", "import httpx"]
            for _ in range(2):  # warm the page cache and the byte-code cache
                _timed(target, env), _timed(baseline, env)
            ours: list[float] = []
            base: list[float] = []
            for _ in range(opts.n):
                ours.append(_timed(target, env))
                base.append(_timed(baseline, env))
        finally:
            subprocess.run([*md, "daemon", "stop"], env=env, stderr=subprocess.DEVNULL)
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    print(f"runs: {opts.n} each, alternating; {opts.endpoints} endpoints listed")
    print(f"modeldeck endpoint list -o json : median {m_ours * 1000:7.1f} ms")
    print(f'python -c "import httpx"        : median {m_base * 1000:7.1f} ms')
    print(f"ratio                           : {m_ours / m_base:.2f}  (target <= 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
