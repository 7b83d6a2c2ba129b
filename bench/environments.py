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

Part 1 (``--part 1``): a deployment whose environment is already built, create until Ready
through a real control plane (a daemon in a temporary MODELDECK_HOME, the Workspace API, as
bench/rollout.py), as a ratio to the same deployment without an environment. The deployment
has model-1's environment inline (`environment: {conda_file: ...}`, python adapted as above)
and a scoring script that imports nothing of it (so it runs in both); it is created once
unmeasured (the build), deleted, then `--rounds` times each, alternately: create with the
environment (resolved, found built, replicas on its python) until Ready, delete; create
without, until Ready, delete. Medians are compared. Target: ratio <= 1.2.

    python bench/environments.py --part 1 --rounds 5
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
sys.path.insert(0, str(REPO / "bench"))

from _common import daemon_home  # noqa: E402
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


SCORE = """\
import json, os

def init():
    pass

def run(raw_data):
    return {"ok": True}
"""


async def _part1(rounds: int, small: bool) -> tuple[list[float], list[float]]:
    """Create-until-Ready times: (with the environment, already built), (without)."""
    from dataclasses import replace

    from modeldeck.services.api.domain import ClusterSpec, EndpointSpec, ModelSpec
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.services.local.controlplane import daemon
    from modeldeck.services.specs.deployment import load_deployment

    with daemon_home("mdbe-") as home:  # short: a Unix socket path is bounded
        code = home / "code"
        code.mkdir()
        (code / "score.py").write_text(SCORE)
        (home / "model").mkdir()
        (home / "model" / "model.json").write_text("{}")
        conda = read_conda_file(CONDA)
        deps = [
            f"python={PYTHON}" if isinstance(d, str) and d.startswith("python") else d
            for d in conda["dependencies"]
        ]
        import yaml

        if small:  # the machinery alone: no package the scoring host looks for
            deps = [f"python={PYTHON}", {"pip": ["six==1.16.0"]}]
        (home / "conda.yaml").write_text(yaml.safe_dump({**conda, "dependencies": deps}))
        common = (
            "endpoint_name: ep-bench\nmodel: azureml:bench-model:1\n"
            f"code_configuration:\n  code: {code}\n  scoring_script: score.py\ninstance_count: 1\n"
        )
        (home / "env.yml").write_text(
            "name: with-env\n" + common + "environment:\n  conda_file: conda.yaml\n"
        )
        (home / "bare.yml").write_text("name: no-env\n" + common)
        with_env: list[float] = []
        without: list[float] = []
        daemon.ensure_daemon()
        async with LocalWorkspace(autostart=False, poll_interval=0.02) as ws:
            await (await ws.create_cluster(ClusterSpec(name="bench"))).wait()
            await ws.create_model(ModelSpec(name="bench-model", path=str(home / "model")))
            await (await ws.create_endpoint(EndpointSpec(name="ep-bench", compute="bench"))).wait()
            env_spec = load_deployment(home / "env.yml").spec
            bare_spec = load_deployment(home / "bare.yml").spec
            print("building the environment once (unmeasured) ...", flush=True)
            t0 = time.perf_counter()
            await (await ws.create_deployment(replace(env_spec, name="warm"))).wait()
            print(f"  built in {time.perf_counter() - t0:.1f} s (warm uv cache)")
            await (await ws.delete_deployment("ep-bench", "warm")).wait()
            for i in range(rounds):
                for spec, times in ((env_spec, with_env), (bare_spec, without)):
                    name = f"{spec.name}-{i}"
                    t0 = time.perf_counter()
                    await (await ws.create_deployment(replace(spec, name=name))).wait()
                    times.append(time.perf_counter() - t0)
                    await (await ws.delete_deployment("ep-bench", name)).wait()
                print(
                    f"round {i + 1}: built environment {with_env[-1] * 1000:.0f} ms, "
                    f"no environment {without[-1] * 1000:.0f} ms",
                    flush=True,
                )
    return with_env, without


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--offline", action="store_true", help="uv from its cache only")
    parser.add_argument(
        "--part", choices=("1", "2", "all"), default="all", help="which figure (default: both)"
    )
    parser.add_argument(
        "--small-env",
        action="store_true",
        help="part 1 with six only instead of model-1's packages (the environment machinery "
        "alone: model-1's has azureml-inference-server-http, whose modules the scoring host "
        "imports at start)",
    )
    args = parser.parse_args()
    if args.part in ("1", "all"):
        import statistics

        with_env, without = asyncio.run(_part1(max(1, args.rounds), args.small_env))
        a, b = statistics.median(with_env), statistics.median(without)
        print(f"create until Ready, environment already built: {a * 1000:.0f} ms (median)")
        print(f"create until Ready, no environment:             {b * 1000:.0f} ms (median)")
        print(f"ratio: {a / b:.3f} (target <= 1.2) {'OK' if a / b <= 1.2 else 'MISSED'}")
        if args.part == "1":
            os._exit(0)

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
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os._exit(0)


if __name__ == "__main__":
    main()
