"""Refresh of 5 attached Kubernetes clusters where one answers in 2 s: concurrent and isolated.

Five fake API servers on loopback (tests/support/fake_apiserver.py), each with one
endpoint and two deployments; one server delays every answer by ``--delay`` seconds.
A dashboard refresh asks every cluster at once for its capacity, its state (routes and
deployments) and its metrics. Printed: the refresh's wall time, the slow cluster's own
refresh time measured alone in the same process (the baseline), and their ratio
(target <= 1.2: the slow cluster costs its own time once, and the fast ones nothing).

    /work/venv/bin/python bench/k8s_refresh.py [--delay 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _load_fake() -> Any:
    if str(ROOT) not in sys.path:  # the fake the tests use, from tests/support
        sys.path.insert(0, str(ROOT))
    from tests.support import fake_apiserver

    return fake_apiserver


async def refresh(driver: Any) -> float:
    t0 = time.perf_counter()
    await asyncio.gather(driver.capacity(), driver.list_state(), driver.metrics())
    return time.perf_counter() - t0


async def main(delay: float, rounds: int) -> None:
    from modeldeck.services.api.domain import (
        ClusterPurpose,
        ClusterSpec,
        CodeConfiguration,
        DeploymentSpec,
        DriverKind,
        Model,
    )
    from modeldeck.services.drivers.base import DeploymentRuntime, EndpointAuth, EndpointRoute
    from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver

    fake_mod = _load_fake()
    fakes = [fake_mod.FakeKube().start() for _ in range(5)]
    tmp = Path(tempfile.mkdtemp())
    kc = fake_mod.write_kubeconfig(
        tmp / "kubeconfig", {f"c{i}": (f.url, "") for i, f in enumerate(fakes)}
    )
    os.environ["KUBECONFIG"] = str(kc)
    drivers = [
        KubernetesDriver(
            ClusterSpec(
                name=f"c{i}",
                driver=DriverKind.KUBERNETES,
                purpose=ClusterPurpose.FAST_PROD,
                kube_context=f"c{i}",
                namespace="ml",
            ),
            data_dir=tmp,
            poll_interval=0.02,
        )
        for i in range(5)
    ]
    examples = ROOT / "examples"
    auth = EndpointAuth("key", "k1" * 16, "k2" * 16, "s" * 32)
    try:
        for d in drivers:
            await d.apply_endpoint(EndpointRoute("ep", auth, {}))
            for name in ("blue", "green"):
                spec = DeploymentSpec(
                    name=name,
                    endpoint_name="ep",
                    model="azureml:demo:1",
                    code_configuration=CodeConfiguration(str(examples / name), "score.py"),
                )
                rt = DeploymentRuntime(
                    spec, Model("demo", 1, str(examples / "model")), str(examples / name)
                )
                await d.apply_deployment("ep", rt, lambda f, m: None)
            await d.apply_endpoint(EndpointRoute("ep", auth, {"blue": 90, "green": 10}))
        fakes[0].delay(r".", delay)  # cluster c0 now answers everything in `delay` seconds
        alone, together, per = [], [], []
        for _ in range(rounds):
            alone.append(await refresh(drivers[0]))
            t0 = time.perf_counter()
            times = await asyncio.gather(*(refresh(d) for d in drivers))
            together.append(time.perf_counter() - t0)
            per.append(times)
        a, t = statistics.median(alone), statistics.median(together)
        fast = statistics.median(max(x[1:]) for x in per)
        print(f"refresh of 5 clusters, one answering in {delay:g} s ({rounds} rounds, medians)")
        print(f"  slow cluster alone (baseline):      {a:7.3f} s")
        print(f"  all 5 together:                     {t:7.3f} s")
        print(f"  slowest fast cluster, in the mix:   {fast:7.3f} s")
        print(f"  ratio together / slowest alone:     {t / a:7.3f}  (target <= 1.2)")
    finally:
        for d in drivers:
            await d.close()
        for f in fakes:
            f.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.delay, args.rounds))
