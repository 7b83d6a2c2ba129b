"""Listing the pods of 2,000 deployments from the fake API server: time per object.

The fake (tests/support/fake_apiserver.py) holds ``--deployments`` x ``--pods``
running pods with modeldeck's labels. Measured in one process, medians of ``--rounds``:

* ``driver.pods()``: modeldeck's path (one label-selected list call through the official
  client's transport, JSON parsed once into dicts);
* the official client's typed path (``CoreV1Api.list_namespaced_pod``, which builds a
  ``V1Pod`` model per pod): what the driver would cost had it used the typed models;
* baseline: ``kubectl get pods -o json -l ...`` against the same server, parsed with
  ``json.loads`` (only when kubectl is installed; it is skipped with a note otherwise).

    /work/venv/bin/python bench/k8s_list.py [--deployments 2000] [--pods 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import timed

ROOT = Path(__file__).resolve().parents[1]
SELECTOR = "app.kubernetes.io/managed-by=modeldeck"


def _load_fake() -> Any:
    if str(ROOT) not in sys.path:  # the fake the tests use, from tests/support
        sys.path.insert(0, str(ROOT))
    from tests.support import fake_apiserver

    return fake_apiserver


async def main(deployments: int, pods: int, rounds: int) -> None:
    from kubernetes import client
    from modeldeck.services.api.domain import ClusterPurpose, ClusterSpec, DriverKind
    from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver
    from modeldeck.services.drivers.kubernetes.kubeconfig import client_configuration, load_context

    fake_mod = _load_fake()
    fake = fake_mod.FakeKube(anonymous=True).start()  # kubectl sends no token over plain http
    tmp = Path(tempfile.mkdtemp())
    kc = fake_mod.write_kubeconfig(tmp / "kubeconfig", {"bench": (fake.url, "")}, current="bench")
    os.environ["KUBECONFIG"] = str(kc)
    driver = KubernetesDriver(
        ClusterSpec(
            name="bench",
            driver=DriverKind.KUBERNETES,
            purpose=ClusterPurpose.DEV_TEST,
            kube_context="bench",
            namespace="ml",
        ),
        data_dir=tmp,
    )
    typed = client.CoreV1Api(client.ApiClient(client_configuration(load_context("bench"))))
    try:
        fake.bulk_pods("ml", deployments, pods)

        async def ours() -> int:
            return len(await driver.pods())

        async def typed_models() -> int:
            out = await asyncio.to_thread(
                typed.list_namespaced_pod, "ml", label_selector=SELECTOR, _request_timeout=60
            )
            return len(out.items)

        rows = [("driver.pods() (dicts)",) + await timed(ours, rounds)]
        rows.append(
            ("typed client (V1Pod models)",) + await timed(typed_models, max(1, rounds // 2))
        )
        kubectl = shutil.which("kubectl")
        if kubectl:

            async def via_kubectl() -> int:
                proc = await asyncio.create_subprocess_exec(
                    kubectl,
                    "--context",
                    "bench",
                    "-n",
                    "ml",
                    "get",
                    "pods",
                    "-o",
                    "json",
                    "-l",
                    SELECTOR,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                out, err = await proc.communicate()
                if proc.returncode:
                    raise RuntimeError(err.decode())
                return len(json.loads(out)["items"])

            rows.append(("kubectl get pods -o json (baseline)",) + await timed(via_kubectl, rounds))
        base = rows[-1][1] / rows[-1][2] if kubectl else rows[0][1] / rows[0][2]
        print(
            f"list pods of {deployments} deployments x {pods} pod(s) from the fake API server (medians)"
        )
        for label, seconds, n in rows:
            per = seconds / n
            print(
                f"  {label:38s} {n:6d} objects  {seconds * 1000:8.1f} ms  {per * 1e6:7.1f} us/object  x{per / base:5.2f} of baseline"
            )
        if not kubectl:
            print("  kubectl is not installed: no kubectl baseline (ratios are to driver.pods())")
    finally:
        await driver.close()
        fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=2000)
    parser.add_argument("--pods", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.deployments, args.pods, args.rounds))
