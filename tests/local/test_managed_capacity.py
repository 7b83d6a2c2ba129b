"""Issue 12: endpoints without ``compute`` on the local workspace are managed online
endpoints, as in az ml: they run on the workspace's managed capacity (this host), and
each deployment's ``instance_type`` is admitted by its size (``controlplane/managed.py``).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from modeldeck.services.api.domain import ClusterSpec, EndpointSpec, ProvisioningState
from modeldeck.services.api.errors import CapacityExceeded, InvalidInput
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import managed

pytestmark = pytest.mark.e2e

SAMPLE = b'{"data": [[1, 2, 3, 4]]}'
DS3 = "Standard_DS3_v2"  # 4 vCPU, 14 GiB: what the azureml-examples deployments ask for


async def test_endpoint_without_compute_serves_on_the_managed_capacity(workspace, h) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await h.ensure_model(ws)
    # what `online-endpoint create -n NAME` (no file) and a managed endpoint YAML send
    await h.wait(await ws.create_endpoint(EndpointSpec(name="sr-ep", compute="")))
    ep = await ws.get_endpoint("sr-ep")
    # az ml shows no compute for a managed endpoint; managed_capacity names where it runs
    assert (ep.compute, ep.kind, ep.managed_capacity) == ("", "Managed", managed.NAME)
    assert ep.provisioning_state is ProvisioningState.SUCCEEDED
    host = managed.host_size()
    cap = await ws.get_cluster(managed.NAME)
    assert cap.managed and cap.vm_size is None and cap.purpose is None
    assert (cap.vcpus_total, cap.memory_gb_total) == (host.vcpus, pytest.approx(host.usable_gb))
    assert managed.NAME in [c.name for c in await ws.list_clusters()]

    # the safe rollout of azureml-examples: blue 1 x DS3_v2, then 2, then green 1 x DS3_v2
    blue = h.deployment("blue", "sr-ep", instance_type=DS3)
    await h.wait(await ws.create_deployment(blue, all_traffic=True))
    result = await ws.invoke("sr-ep", SAMPLE)
    assert result.status == 200 and json.loads(result.body)["version"] == "blue"
    await h.wait(await ws.update_deployment(replace(blue, instance_count=2)))
    green = h.deployment("green", "sr-ep", code="green", instance_type=DS3)
    await h.wait(await ws.create_deployment(green))
    result = await ws.invoke("sr-ep", SAMPLE, deployment="green")
    assert result.status == 200 and json.loads(result.body)["version"] == "green"
    shown = await ws.get_deployment("sr-ep", "blue")
    assert shown.spec.instance_type == DS3 and shown.ready_replicas == 2
    cap = await ws.get_cluster(managed.NAME)
    # the sizes are counted (3 x 4 vCPU, 3 x 14 GiB), beside the host's own figures
    assert (cap.vcpus_used, cap.memory_gb_used) == (12, 42)
    assert cap.endpoints == 1


async def test_a_deployment_larger_than_the_managed_capacity_is_refused(workspace, h) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await h.ensure_model(ws)
    await h.wait(await ws.create_endpoint(EndpointSpec(name="big-ep", compute="")))
    total = managed.host_size().usable_gb * managed.MEMORY_OVERCOMMIT
    count = int(total // 14) + 1
    before = await h.snapshot(ws)
    with pytest.raises(CapacityExceeded) as err:
        await ws.create_deployment(
            h.deployment("blue", "big-ep", instances=count, instance_type=DS3)
        )
    message = err.value.message
    assert f"does not fit the managed capacity: {count} x {DS3} needs {count * 14:g} GiB" in message
    assert f"x {managed.MEMORY_OVERCOMMIT}" in message
    assert err.value.details["total_memory_gb"] == round(total, 3)
    assert "lower instance_count" in (err.value.fix or "")
    assert "--set compute=NAME" in (err.value.fix or "")
    with pytest.raises(InvalidInput) as bad:  # a size modeldeck cannot map
        await ws.create_deployment(h.deployment("blue", "big-ep", instance_type="Standard_Z9"))
    assert bad.value.field == "instance_type" and "Standard_DS3_v2" in (bad.value.fix or "")
    with pytest.raises(InvalidInput) as gpu:
        await ws.create_deployment(h.deployment("blue", "big-ep", instance_type="Standard_NC6s_v3"))
    assert "GPU" in gpu.value.message
    assert await h.snapshot(ws) == before  # nothing changed


async def test_the_managed_capacity_is_not_a_users_cluster(workspace, h) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await h.wait(await ws.create_endpoint(EndpointSpec(name="keep-ep", compute="")))
    for call, verb in (
        (ws.delete_cluster(managed.NAME), "deleted"),
        (ws.detach_cluster(managed.NAME), "detached"),
        (ws.scale_cluster(managed.NAME, 4), "scaled"),
    ):
        with pytest.raises(InvalidInput) as err:
            await call
        assert "managed capacity" in err.value.message and verb in err.value.message
    with pytest.raises(InvalidInput) as err:
        await ws.create_cluster(ClusterSpec(name=managed.NAME))
    assert "managed capacity" in err.value.message
    # the record's mark cannot be forged by a create either
    await h.wait(await ws.create_cluster(ClusterSpec(name="fake-managed", managed=True)))
    assert not (await ws.get_cluster("fake-managed")).managed
    await h.wait(await ws.delete_cluster("fake-managed"))
    assert not (await ws.get_cluster(managed.NAME)).error


async def test_a_kubernetes_profile_names_the_cluster_to_use(workspace, h) -> None:  # type: ignore[no-untyped-def]
    await h.ensure_cluster(workspace, "myaks")
    ws = LocalWorkspace(autostart=False, managed_capacity=False)
    try:
        with pytest.raises(InvalidInput) as err:
            await ws.create_endpoint(EndpointSpec(name="k8s-ep", compute=""))
    finally:
        await ws.close()
    assert err.value.field == "compute"
    assert "managed_capacity = false" in err.value.message
    listed = err.value.message.split("the clusters of this workspace: ", 1)[1].split(", ")
    assert "myaks" in listed and managed.NAME not in listed
    assert "--set compute=myaks" in (err.value.fix or "")
    assert "compute: azureml:myaks" in (err.value.fix or "")
    assert "k8s-ep" not in [e.name for e in await workspace.list_endpoints()]
