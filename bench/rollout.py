"""Rollout time: a deployment created through the pool driver until Ready, against a bare replica.

    python bench/rollout.py [--runs 5]

Baseline: one replica process (``python -m modeldeck.services.local.dataplane.replica``) started
by hand on a free port, timed until ``GET /`` answers ``Healthy`` (polled every 5 ms).
Measured: ``PoolDriver.apply_deployment`` of a fresh one-replica deployment (model dir,
supervisor, status pipe, readiness probe, gateway registration) until it returns
Ready; then the same for an update of that deployment (new replica ready, traffic
switched, old one drained and stopped). Runs alternate; medians are compared.

Also measured, as an operator sees it: ``Workspace.create_deployment`` + wait through
the real control plane (a daemon in a temporary MODELDECK_HOME: API call, checks, code
copy, SQLite, pool, gateway) and the whole ``modeldeck online-deployment create -f``
command (CLI start, YAML, socket, progress) until it returns with the deployment Ready.

Target: create / bare <= 2 (judged on the control-plane path, the one the CLI and the
dashboard take; the driver-only figure is printed beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench/_common; tests/support, shared with the tests
from _common import daemon_home  # noqa: E402

from tests.support.cli import modeldeck_command  # noqa: E402

SCRIPT = """
import json, os
def init():
    global model
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "model.json")) as f:
        model = json.load(f)
def run(raw_data):
    return {"ok": True}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_replica(code: Path, model_dir: Path) -> float:
    port = _free_port()
    start = time.perf_counter()
    from tests.support.dataplane import replica_argv

    proc = subprocess.Popen(replica_argv(code, model_dir, "--port", str(port)))
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    if resp.status == 200 and resp.read() == b"Healthy":
                        return time.perf_counter() - start
            except (urllib.error.URLError, ConnectionError):
                pass
            if proc.poll() is not None:
                raise SystemExit(f"bare replica exited with {proc.returncode}")
            time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def _bench(runs: int) -> int:
    from modeldeck.services.api.domain import ClusterSpec, CodeConfiguration, DeploymentSpec, Model
    from modeldeck.services.drivers.base import DeploymentRuntime, EndpointAuth, EndpointRoute
    from modeldeck.services.drivers.pool import PoolDriver
    from modeldeck.services.local.dataplane.gateway import Gateway

    root = Path(tempfile.mkdtemp(prefix="md-bench-rollout-"))
    model = root / "models" / "model"
    model.mkdir(parents=True)
    (model / "model.json").write_text('{"coef": [1, 2], "intercept": 0}')
    amd = root / "amd"
    amd.mkdir()
    (amd / "model").symlink_to(model, target_is_directory=True)
    codes = []
    for version in ("v1", "v2"):
        code = root / version
        code.mkdir()
        (code / "score.py").write_text(textwrap.dedent(SCRIPT))
        codes.append(code)

    gw = Gateway()
    await gw.start()
    pool = PoolDriver(ClusterSpec(name="bench"), gateway=gw, data_dir=root / "pool")
    await pool.apply_endpoint(EndpointRoute("ep", EndpointAuth("none", "a", "b", "c"), {}))
    loop = asyncio.get_running_loop()

    def runtime(name: str, code: Path) -> DeploymentRuntime:
        spec = DeploymentSpec(
            name=name,
            endpoint_name="ep",
            model="azureml:m:1",
            code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
        )
        return DeploymentRuntime(
            spec=spec, model=Model(name="m", version=1, path=str(model)), code_dir=str(code)
        )

    bare, create, update = [], [], []
    try:
        bare_replica(codes[0], amd)  # warm the page cache
        for i in range(runs):
            bare.append(await loop.run_in_executor(None, bare_replica, codes[0], amd))
            name = f"d{i}"
            t0 = time.perf_counter()
            await pool.apply_deployment("ep", runtime(name, codes[0]), lambda _f, _m: None)
            create.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await pool.apply_deployment("ep", runtime(name, codes[1]), lambda _f, _m: None)
            update.append(time.perf_counter() - t0)
            await pool.delete_deployment("ep", name)
    finally:
        await pool.close()
        await gw.close()
    try:
        plane, command, bare2 = await _through_the_control_plane(runs, model, codes[0])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    b, c, u = (statistics.median(x) * 1000 for x in (bare, create, update))
    b2, w, k = (statistics.median(x) * 1000 for x in (bare2, plane, command))
    print(f"rollout bench: medians of {runs} alternate runs")
    print(f"bare replica start -> Healthy       {b:8.1f} ms  (baseline)")
    print(f"pool create -> Ready (1 replica)    {c:8.1f} ms  ratio {c / b:.2f}")
    print(f"pool update -> Ready, old stopped   {u:8.1f} ms  ratio {u / b:.2f}")
    print(f"bare replica start -> Healthy       {b2:8.1f} ms  (baseline, beside the daemon)")
    print(f"workspace create -> Ready (daemon)  {w:8.1f} ms  ratio {w / b2:.2f}")
    print(f"CLI deployment create -> Ready      {k:8.1f} ms  ratio {k / b2:.2f}")
    met = w / b2 <= 2.0
    print(f"target: create (control plane) / bare <= 2: {'met' if met else 'NOT met'}")
    return 0 if met else 1


async def _through_the_control_plane(
    runs: int, model: Path, code: Path
) -> tuple[list[float], list[float], list[float]]:
    """Deployment create until Ready through a real daemon: the Workspace API, and the CLI."""
    import os

    from modeldeck.services.api.domain import ClusterSpec, EndpointSpec, ModelSpec
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.services.local.controlplane import daemon
    from modeldeck.services.specs.deployment import load_deployment

    with daemon_home("mdb-") as home:  # short: a Unix socket path is bounded
        (home / "dep.yml").write_text(
            "name: bench-dep\nendpoint_name: ep-bench\nmodel: azureml:bench-model:1\n"
            f"code_configuration:\n  code: {code}\n  scoring_script: score.py\n"
            "instance_count: 1\n"
        )
        cli = modeldeck_command()
        loop = asyncio.get_running_loop()
        bare: list[float] = []
        plane: list[float] = []
        command: list[float] = []
        daemon.ensure_daemon()
        async with LocalWorkspace(autostart=False) as ws:
            await (await ws.create_cluster(ClusterSpec(name="bench"))).wait()
            await ws.create_model(ModelSpec(name="bench-model", path=str(model)))
            await (await ws.create_endpoint(EndpointSpec(name="ep-bench", compute="bench"))).wait()
            spec = load_deployment(home / "dep.yml").spec
            for i in range(runs):
                bare.append(await loop.run_in_executor(None, bare_replica, code, _amd(model)))
                name = f"api-{i}"
                t0 = time.perf_counter()
                await (await ws.create_deployment(replace(spec, name=name))).wait()
                plane.append(time.perf_counter() - t0)
                await (await ws.delete_deployment("ep-bench", name)).wait()
                name = f"cli-{i}"
                argv = [*cli, "online-deployment", "create", "-f", str(home / "dep.yml")]
                argv += ["-n", name, "-o", "none"]
                t0 = time.perf_counter()
                subprocess.run(argv, check=True, env=dict(os.environ))
                command.append(time.perf_counter() - t0)
                await (await ws.delete_deployment("ep-bench", name)).wait()
    return plane, command, bare


def _amd(model: Path) -> Path:
    """An AZUREML_MODEL_DIR holding the model under its own base name (as the pool makes it)."""
    return model.parent.parent / "amd"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.exit(asyncio.run(_bench(args.runs)))


if __name__ == "__main__":
    main()
