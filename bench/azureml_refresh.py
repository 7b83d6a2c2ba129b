"""Dashboard refresh of an Azure ML workspace: 50 endpoints x 3 deployments, against the fake ARM.

A refresh is what the dashboard asks for at once: clusters, endpoints and every
deployment (``list_clusters``, ``list_endpoints``, ``list_deployments()`` gathered).
It prints the ARM calls one refresh makes (the API offers no deployment list across
endpoints, so the minimum is one ``onlineEndpoints`` list + one
``onlineEndpoints/{e}/deployments`` list per endpoint, + the ``computes`` list) and its
wall time as a ratio to ONE list call (``onlineEndpoints``) against the same server,
measured in the same process. Metrics (Azure Monitor's batch API, 50 resources a call)
are shown apart.

    /work/venv/bin/python bench/azureml_refresh.py [--endpoints 50] [--deployments 3] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import timed

ROOT = Path(__file__).resolve().parents[1]


def _load_fake() -> Any:
    if str(ROOT) not in sys.path:  # the fake the tests use, from tests/support
        sys.path.insert(0, str(ROOT))
    from tests.support import fake_arm

    return fake_arm


class StaticCredential:
    def get_token(self, *scopes: str, **kw: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("bench-token", int(time.time() + 3600))


async def main(n_endpoints: int, n_deployments: int, rounds: int) -> None:
    from modeldeck.services.azureml.workspace import AzureMLWorkspace

    fake = await _load_fake().FakeArm(valid_tokens={"bench-token"}).start()
    try:
        fake.add_compute("myaks", agents=6)
        for i in range(n_endpoints):
            names = [f"d{j}" for j in range(n_deployments)]
            fake.add_endpoint(
                f"ep-{i:03d}",
                "myaks",
                traffic={n: (100 if j == 0 else 0) for j, n in enumerate(names)},
            )
            for n in names:
                fake.add_deployment(f"ep-{i:03d}", n)
                fake.metrics.setdefault(f"ep-{i:03d}", {})[n] = {
                    "RequestsPerMinute": 60.0,
                    "RequestLatency_P50": 10.0,
                }
        ws = AzureMLWorkspace.from_settings(
            "bench",
            {
                "subscription_id": fake.sub,
                "resource_group": fake.rg,
                "workspace_name": fake.ws,
                "arm_endpoint": fake.base_url,
                "credential": StaticCredential(),
                "metrics_ttl": 0,  # measure the calls, not the cache
                "metrics_endpoint": fake.base_url,  # Azure Monitor's batch API, faked too
            },
        )

        async def one_list() -> None:
            await ws.arm.list_all(f"{ws.workspace_id}/onlineEndpoints")

        async def refresh() -> Any:
            return await asyncio.gather(
                ws.list_clusters(), ws.list_endpoints(), ws.list_deployments()
            )

        async def metrics() -> Any:
            return (await ws.get_metrics()).samples

        # warm up (token, connections)
        await one_list()
        clusters, endpoints, deployments = await refresh()
        assert clusters
        assert len(endpoints) == n_endpoints and len(deployments) == n_endpoints * n_deployments

        before = fake.arm_calls()
        await refresh()
        refresh_calls = fake.arm_calls() - before
        before = fake.arm_calls()
        await metrics()
        metric_calls = fake.arm_calls() - before

        base, ref, met = [], [], []
        for _ in range(rounds):  # alternate so load on the machine hits all alike
            base.append((await timed(one_list, 1))[0])
            ref.append((await timed(refresh, 1))[0])
            met.append((await timed(metrics, 1))[0])
        b, r, m = statistics.median(base), statistics.median(ref), statistics.median(met)
        print(
            f"workspace: {n_endpoints} endpoints x {n_deployments} deployments, 1 AKS compute (fake ARM on loopback)"
        )
        print(
            f"ARM calls per refresh: {refresh_calls}  (minimum the API offers: 1 computes + 1 onlineEndpoints + {n_endpoints} deployments lists = {n_endpoints + 2})"
        )
        print(
            f"calls for metrics: {metric_calls}  (1 onlineEndpoints list + Azure Monitor metrics:getBatch, 50 resources"
            f" a call: {-(-n_endpoints // 50)} for the endpoints, {-(-n_endpoints * n_deployments // 50)} for the deployments)"
        )
        print(f"baseline: one onlineEndpoints list call, median {b * 1000:.2f} ms over {rounds}")
        print(f"refresh / one list call: {r / b:.1f}x  (median {r * 1000:.1f} ms)")
        print(f"metrics / one list call: {m / b:.1f}x  (median {m * 1000:.1f} ms)")
        await ws.close()
    finally:
        await fake.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoints", type=int, default=50)
    ap.add_argument("--deployments", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=15)
    a = ap.parse_args()
    asyncio.run(main(a.endpoints, a.deployments, a.rounds))
