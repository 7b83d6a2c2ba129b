"""Attached Kubernetes clusters in the local workspace, against a small API server on loopback.

The server answers what ``cluster attach`` reads (``/api/v1/nodes``, ``/version``)
as a real API server does; stopping it is a cluster that stops answering.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from modeldeck.services.api.domain import ClusterSpec, DriverKind
from modeldeck.services.api.errors import Conflict, InvalidInput, NotFound
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon

pytestmark = pytest.mark.e2e

NODES = {
    "kind": "NodeList",
    "apiVersion": "v1",
    "items": [
        {
            "metadata": {"name": f"aks-node-{i}"},
            "spec": {},
            "status": {"allocatable": {"cpu": "3860m", "memory": "12Gi", "pods": "110"}},
        }
        for i in range(4)
    ],
}


@pytest.fixture
async def apiserver() -> AsyncIterator[web.AppRunner]:
    async def nodes(request: web.Request) -> web.Response:
        return web.json_response(NODES)

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "30", "gitVersion": "v1.30.4"})

    async def namespace(request: web.Request) -> web.Response:  # attach checks it exists
        name = request.match_info["name"]
        return web.json_response(
            {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}}
        )

    app = web.Application()
    app.router.add_get("/api/v1/nodes", nodes)
    app.router.add_get("/version", version)
    app.router.add_get("/api/v1/namespaces/{name}", namespace)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner
    finally:
        await runner.cleanup()


def kubeconfig(path: Path, port: int) -> Path:
    server = {"server": f"http://127.0.0.1:{port}"}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "aks", "cluster": server}],
        "users": [{"name": "ops", "user": {"token": "not-a-real-token"}}],
        "contexts": [
            {"name": "prod", "context": {"cluster": "aks", "user": "ops", "namespace": "ml"}},
            {"name": "prod-alias", "context": {"cluster": "aks", "user": "ops", "namespace": "ml"}},
        ],
        "current-context": "prod",
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


async def test_attach_refuse_twice_and_an_unreachable_cluster_stays_contained(  # type: ignore[no-untyped-def]
    h, apiserver, tmp_path_factory
) -> None:
    port = apiserver.addresses[0][1]
    home = tmp_path_factory.mktemp("mdk")
    config = kubeconfig(home / "kubeconfig", port)
    with h.running_home(home, KUBECONFIG=str(config)):
        daemon.ensure_daemon()
        async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
            await h.make_endpoint(ws, "pool-ep")
            await h.wait(
                await ws.attach_cluster(
                    ClusterSpec(name="aks-prod", driver=DriverKind.KUBERNETES, kube_context="prod")
                )
            )
            aks = await ws.get_cluster("aks-prod")
            assert aks.driver is DriverKind.KUBERNETES and aks.error is None
            assert (aks.agent_count, aks.vcpus_total) == (4, pytest.approx(15.44))
            # no --namespace: the context's, recorded at attach
            assert aks.namespace == "ml" and aks.kube_context == "prod"
            before = await h.snapshot(ws)
            # the same context and namespace under a second name: refused
            with pytest.raises(Conflict) as err:
                await ws.attach_cluster(
                    ClusterSpec(name="aks-again", kube_context="prod", namespace="ml")
                )
            assert "aks-prod" in err.value.message
            # another context name for the same server and namespace: refused too
            with pytest.raises(Conflict):
                await ws.attach_cluster(ClusterSpec(name="aks-alias", kube_context="prod-alias"))
            # a context that is not in the kubeconfig
            with pytest.raises(InvalidInput) as err:
                await ws.attach_cluster(ClusterSpec(name="aks-ghost", kube_context="ghost"))
            assert err.value.field == "kube_context"
            assert await h.snapshot(ws) == before
            # the API server goes away: only its own row shows an error
            await apiserver.cleanup()
            clusters = {c.name: c for c in await ws.list_clusters()}
            assert clusters["aks-prod"].error
            assert clusters["myaks"].error is None and clusters["myaks"].vcpus_total == 12
            assert [e.name for e in await ws.list_endpoints()] == ["pool-ep"]
            assert (await ws.get_endpoint("pool-ep")).error is None
            # detach forgets it (what runs there keeps running)
            await h.wait(await ws.detach_cluster("aks-prod"))
            with pytest.raises(NotFound):
                await ws.get_cluster("aks-prod")
            with pytest.raises(InvalidInput):
                await ws.detach_cluster("myaks")  # pools are deleted, not detached
