"""Environment builds: modeldeck's (uv) against `python -m venv` + `pip install`.

    python bench/environments.py [--rounds 2] [--offline]

Part 2 (here): a cold build of model-1's environment (the official example's conda file,
tests/environments/azureml_examples/model-1/conda.yaml: numpy, scikit-learn, scipy, joblib,
azureml-inference-server-http, inference-schema; its python=3.12 adapted to this machine's
Python 3.11 so both sides use one interpreter) as a ratio to `python -m venv` + `pip install`
of the same requirements. Both from a warm cache: one unmeasured run of each first fills uv's
cache and pip's; then each round builds both into new directories (an empty environment
root: nothing reused). pip and uv get the same pip configuration (pip reads it itself,
modeldeck maps it for uv). The best round of each is kept.
Target: ratio <= 0.3.

Part 1 (TODO for the lead, needs the engine integration): a deployment whose environment is
already built, create until Ready, as a ratio to the same deployment without an
environment; target <= 1.2. Start a local workspace (as bench/rollout.py does), create the
model-1 deployment with `environment: {conda_file: .../model-1/conda.yaml}` once (builds),
delete it, then time create-until-Ready with the environment (now built: reused) against
the same deployment with no environment, alternately, a few rounds each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO.parent))  # run from a checkout without installing

from modeldeck.services.environments import (  # noqa: E402
    build,
    environment_from_dict,
    resolve,
)
from modeldeck.services.environments.spec import read_conda_file  # noqa: E402

CONDA = REPO / "tests" / "environments" / "azureml_examples" / "model-1" / "conda.yaml"
PYTHON = "3.11"


def _spec():
    conda = read_conda_file(CONDA)
    deps = [
        f"python={PYTHON}" if isinstance(d, str) and d.startswith("python") else d
        for d in conda["dependencies"]
    ]
    return environment_from_dict(
        {"name": "model-1-env", "conda_file": {**conda, "dependencies": deps}},
        base_dir=CONDA.parent,
        source=str(CONDA),
    )


def _uv_build(resolved, root: Path, *, offline: bool) -> float:
    lines: list[str] = []
    t0 = time.perf_counter()
    built = asyncio.run(build(resolved, root=root, log=lines.append, offline=offline))
    elapsed = time.perf_counter() - t0
    assert not built.reused, "the uv side must build, not reuse"
    return elapsed


def _pip_build(python: Path, requirements: Path, target: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(python), "-m", "venv", str(target)], check=True)
    proc = subprocess.run(
        [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(requirements)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"pip install failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--offline", action="store_true", help="uv from its cache only")
    args = parser.parse_args()

    resolved = resolve(_spec())
    for warning in resolved.warnings:
        print(f"warning: {warning}")
    print(f"python {resolved.interpreter.version} ({resolved.python})")
    print("requirements: " + " ".join(resolved.requirements))
    work = Path(tempfile.mkdtemp(prefix="md-bench-env-"))
    try:
        reqs = work / "requirements.txt"
        reqs.write_text("".join(f"{r}\n" for r in (*resolved.options, *resolved.requirements)))
        print("warming uv's and pip's caches (unmeasured) ...", flush=True)
        _uv_build(resolved, work / "warm-uv", offline=args.offline)
        _pip_build(resolved.python, reqs, work / "warm-pip")
        uv_times: list[float] = []
        pip_times: list[float] = []
        for i in range(args.rounds):
            uv_times.append(_uv_build(resolved, work / f"uv-{i}", offline=args.offline))
            pip_times.append(_pip_build(resolved.python, reqs, work / f"pip-{i}"))
            print(f"round {i + 1}: uv {uv_times[-1]:.2f} s, venv+pip {pip_times[-1]:.2f} s")
        uv_best, pip_best = min(uv_times), min(pip_times)
        ratio = uv_best / pip_best
        print(f"cold build, modeldeck (uv venv + uv pip install): {uv_best:.2f} s")
        print(f"python -m venv + pip install, same packages:      {pip_best:.2f} s")
        print(f"ratio: {ratio:.3f} (target <= 0.3) {'OK' if ratio <= 0.3 else 'MISSED'}")
        print("part 1 (built environment vs none, create until Ready): TODO, see docstring")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os._exit(0)


if __name__ == "__main__":
    main()
