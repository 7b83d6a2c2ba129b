"""An attached Kubernetes cluster driven through the local control plane, end to end.

The API server is the Kubernetes tests' fake (tests/kubernetes/fake_apiserver.py): a
real HTTP server speaking the API server's wire protocol, with a controller that
rolls Deployments out. The daemon reaches it through KUBECONFIG, as a user's would.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.domain import ClusterDriver, ClusterSpec, KeyType, ProvisioningState
from modeldeck.services.local import daemon
from modeldeck.services.local.client import LocalWorkspace

pytestmark = pytest.mark.e2e

FAKE = Path(__file__).resolve().parents[1] / "kubernetes" / "fake_apiserver.py"


def _fake_module() -> Any:
    name = "modeldeck_tests_fake_apiserver"  # the name tests/kubernetes loads it under
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FAKE)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def fake() -> Iterator[Any]:
    server = _fake_module().FakeKube().start()
    try:
        yield server
    finally:
        server.stop()
    assert server.invalid == []  # every manifest the driver sent passed schema validation


def _objects(fake: Any, plural: str) -> dict[str, dict]:
    return {
        name: obj for (p, ns, name), obj in list(fake.store.items()) if p == plural and ns == "ml"
    }


def _secret_values(fake: Any) -> set[str]:
    out: set[str] = set()
    for obj in _objects(fake, "secrets").values():
        for value in (obj.get("data") or {}).values():
            out.add(base64.b64decode(value).decode())
        out.update((obj.get("stringData") or {}).values())
    return out


async def test_kubernetes_endpoint_through_the_daemon(fake, h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("mdq")
    config = _fake_module().write_kubeconfig(
        home / "kubeconfig", {"fake": (fake.url, "")}, current="fake"
    )
    with h.running_home(home, KUBECONFIG=str(config)):
        daemon.ensure_daemon()
        async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
            await h.wait(
                await ws.attach_cluster(
                    ClusterSpec(
                        name="aks",
                        driver=ClusterDriver.KUBERNETES,
                        kube_context="fake",
                        namespace="ml",
                    )
                )
            )
            assert (await ws.get_cluster("aks")).vcpus_total > 12
            await h.ensure_model(ws)
            await h.make_endpoint(ws, "kube-ep", cluster="aks")
            await h.wait(
                await ws.create_deployment(h.deployment("blue", "kube-ep"), all_traffic=True)
            )
            assert "kube-ep-blue" in _objects(fake, "deployments")
            blue = await ws.get_deployment("kube-ep", "blue")
            assert blue.provisioning_state is ProvisioningState.SUCCEEDED
            assert blue.ready_replicas == 1
            await h.wait(await ws.create_deployment(h.deployment("green", "kube-ep", code="green")))
            await h.wait(await ws.update_endpoint("kube-ep", traffic={"blue": 90, "green": 10}))
            keys = await ws.get_keys("kube-ep")
            assert keys.primaryKey in _secret_values(fake)
            new = await ws.regenerate_keys("kube-ep", KeyType.PRIMARY)
            values = _secret_values(fake)  # the cluster has the new key when the call returns
            assert new.primaryKey in values and keys.primaryKey not in values
            assert any(line.deployment == "blue" for line in await ws.get_logs("kube-ep", "blue"))

        # a restart re-applies what the records hold; nothing is lost
        assert daemon.stop_daemon() is True
        daemon.ensure_daemon()
        async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
            for _ in range(400):
                deps = await ws.list_deployments("kube-ep")
                if all(d.provisioning_state is ProvisioningState.SUCCEEDED for d in deps):
                    break
                await asyncio.sleep(0.05)
            assert {d.name: d.traffic for d in deps} == {"blue": 90, "green": 10}
            assert all(d.provisioning_state is ProvisioningState.SUCCEEDED for d in deps)
            assert await ws.get_keys("kube-ep") == new
            await h.wait(await ws.update_endpoint("kube-ep", traffic={"blue": 0, "green": 100}))
            await h.wait(await ws.delete_deployment("kube-ep", "blue"))
            assert "kube-ep-blue" not in _objects(fake, "deployments")
            await h.wait(await ws.delete_endpoint("kube-ep"))
            assert _objects(fake, "deployments") == {}
            await h.wait(await ws.detach_cluster("aks"))
            assert await ws.list_clusters() == []
