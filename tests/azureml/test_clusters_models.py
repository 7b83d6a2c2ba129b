"""Clusters (computes of type AKS / Kubernetes) and models on the fake ARM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import ClusterPurpose, ClusterSpec, DriverKind, ModelSpec
from modeldeck.services.api.errors import Conflict, InvalidInput, ModeldeckError, NotFound

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AKS_ID = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-demo/providers/"
    "Microsoft.ContainerService/managedClusters/prod-aks"
)


async def test_list_clusters_shows_only_kubernetes_and_aks(ws: Any, seeded: Any) -> None:
    seeded.add_compute("cpu-cluster", kind="AmlCompute")
    seeded.add_compute("arc", kind="Kubernetes", resource_id=AKS_ID)
    clusters = {c.name: c for c in await ws.list_clusters()}
    assert set(clusters) == {"myaks", "arc"}
    aks = clusters["myaks"]
    assert aks.driver is DriverKind.AZUREML and aks.agent_count == 3
    assert aks.vm_size == "Standard_D3_v2" and aks.vcpus_total == 12
    assert aks.endpoints == 1
    assert clusters["arc"].namespace == "default" and clusters["arc"].resource_id == AKS_ID
    with pytest.raises(NotFound) as info:
        await ws.get_cluster("cpu-cluster")
    assert "AmlCompute" in str(info.value)


async def test_create_aks_cluster_with_purpose(ws: Any, fake: Any) -> None:
    handle = await ws.create_cluster(
        ClusterSpec(
            name="devaks", purpose=ClusterPurpose.DEV_TEST, agent_count=1, vm_size="Standard_D2_v2"
        )
    )
    op = await handle.wait()
    assert op.progress == 1.0
    body = fake.calls("PUT", "/computes/devaks")[0].body
    assert body["properties"]["computeType"] == "AKS"
    assert body["properties"]["properties"] == {
        "agentCount": 1,
        "agentVmSize": "Standard_D2_v2",
        "clusterPurpose": "DevTest",
    }
    assert body["location"] == fake.location
    c = await ws.get_cluster("devaks")
    assert c.purpose is ClusterPurpose.DEV_TEST and c.vcpus_total == 2


async def test_fastprod_under_12_vcpus_is_refused_before_sending(ws: Any, fake: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        await ws.create_cluster(ClusterSpec(name="tiny", agent_count=1, vm_size="Standard_D3_v2"))
    assert info.value.field == "purpose" and "12 vCPU" in info.value.rule
    assert fake.calls("PUT") == []


async def test_attach_and_detach_a_kubernetes_cluster(ws: Any, fake: Any) -> None:
    await (
        await ws.attach_cluster(
            ClusterSpec(
                name="prod", driver=DriverKind.KUBERNETES, resource_id=AKS_ID, namespace="ml"
            )
        )
    ).wait()
    body = fake.calls("PUT", "/computes/prod")[0].body
    assert body["properties"]["computeType"] == "Kubernetes"
    assert body["properties"]["resourceId"] == AKS_ID
    assert body["properties"]["properties"] == {"namespace": "ml"}
    with pytest.raises(Conflict) as info:  # the seed's warning: never attach one cluster twice
        await ws.attach_cluster(
            ClusterSpec(name="prod2", driver=DriverKind.KUBERNETES, resource_id=AKS_ID)
        )
    assert "already attached as 'prod'" in str(info.value)
    await (await ws.detach_cluster("prod")).wait()
    delete = fake.calls("DELETE", "/computes/prod")[0]
    assert delete.query["underlyingResourceAction"] == "Detach"
    assert [c.name for c in await ws.list_clusters()] == []


async def test_attach_needs_an_arm_resource_id(ws: Any, fake: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        await ws.attach_cluster(
            ClusterSpec(name="prod", driver=DriverKind.KUBERNETES, resource_id="my-ctx")
        )
    assert "az aks show --query id" in str(info.value)


async def test_scale_updates_agent_count(ws: Any, seeded: Any) -> None:
    await (await ws.scale_cluster("myaks", 5)).wait()
    body = seeded.calls("PUT", "/computes/myaks")[0].body
    assert body["properties"]["properties"]["agentCount"] == 5
    assert body["properties"]["properties"]["agentVmSize"] == "Standard_D3_v2"
    assert (await ws.get_cluster("myaks")).agent_count == 5
    with pytest.raises(InvalidInput):  # 2 x D3_v2 = 8 vCPU < FastProd's 12
        await ws.scale_cluster("myaks", 2)


async def test_delete_cluster_with_endpoints_is_refused(ws: Any, seeded: Any) -> None:
    with pytest.raises(Conflict) as info:
        await ws.delete_cluster("myaks")
    assert "my-endpoint" in str(info.value)
    seeded.add_compute("spare")
    await (await ws.delete_cluster("spare")).wait()
    assert (
        seeded.calls("DELETE", "/computes/spare")[0].query["underlyingResourceAction"] == "Delete"
    )


async def test_compute_provisioning_failure_is_shown(ws: Any, fake: Any) -> None:
    fake.lro_steps = 1
    handle = await ws.create_cluster(ClusterSpec(name="bigaks", agent_count=3))
    # the compute fails while the operation runs: quota, as Azure words it
    op_id = next(iter(fake.ops))
    fake.ops[op_id].error = {
        "code": "QuotaExceeded",
        "message": "Operation could not be completed as it results in exceeding approved standardDv2Family Cores quota.",
    }
    with pytest.raises(ModeldeckError) as info:
        await handle.wait()
    assert info.value.code == "CapacityExceeded"
    assert "exceeding approved standardDv2Family Cores quota" in str(info.value)
    assert "modeldeck cluster scale" in (info.value.fix or "")


async def test_register_a_model_folder_uploads_it(ws: Any, fake: Any) -> None:
    model = await ws.create_model(
        ModelSpec(name="sklearn-demo", path=str(EXAMPLES / "model"), tags={"a": "b"})
    )
    assert model.version == 1
    assert model.path.startswith(fake.base_url + "/blob/") and model.path.endswith("/model")
    uploaded = {p.split("/model/", 1)[1]: data for p, data in fake.blobs.items()}
    assert uploaded["model.json"] == (EXAMPLES / "model" / "model.json").read_bytes()
    assert all(r.token is None for r in fake.calls("PUT", "/blob/"))  # SAS, not our ARM token
    put = fake.calls("PUT", "/models/sklearn-demo/versions/1")[0].body
    assert put["properties"]["modelType"] == "custom_model"
    again = await ws.create_model(ModelSpec(name="sklearn-demo", path=str(EXAMPLES / "model")))
    assert again.version == 2
    assert [m.version for m in await ws.list_models("sklearn-demo")] == [1, 2]
    assert (await ws.get_model("sklearn-demo")).version == 2
    assert (await ws.get_model("sklearn-demo", 1)).tags == {"a": "b"}


async def test_register_by_reference_copies_the_uri(ws: Any, seeded: Any) -> None:
    m = await ws.create_model(ModelSpec(name="copy", path="azureml:sklearn-demo:2"))
    src = seeded.models["sklearn-demo"]["2"]["properties"]["modelUri"]
    assert m.path == src and m.version == 1
    assert seeded.blobs == {}


async def test_model_version_conflict_and_bad_path(ws: Any, seeded: Any) -> None:
    with pytest.raises(Conflict):
        await ws.create_model(
            ModelSpec(name="sklearn-demo", path=str(EXAMPLES / "model"), version=2)
        )
    with pytest.raises(InvalidInput) as info:
        await ws.create_model(ModelSpec(name="x-model", path="/no/such/place"))
    assert info.value.field == "path"


async def test_list_all_models_and_delete_one_in_use(ws: Any, seeded: Any) -> None:
    refs = {m.ref for m in await ws.list_models()}
    assert refs == {"azureml:sklearn-demo:1", "azureml:sklearn-demo:2"}
    with pytest.raises(Conflict) as info:
        await ws.delete_model("sklearn-demo", 1)
    assert "my-endpoint/blue" in str(info.value)
    seeded.add_model("unused", "1")
    await ws.delete_model("unused", 1)
    with pytest.raises(NotFound):
        await ws.get_model("unused", 1)


async def test_register_a_single_file_model(ws: Any, fake: Any, tmp_path: Path) -> None:
    f = tmp_path / "m.pkl"
    f.write_bytes(b"\x80\x04weights")
    model = await ws.create_model(ModelSpec(name="pickled", path=str(f)))
    assert model.path.endswith("/m.pkl")
    [(path, data)] = fake.blobs.items()
    assert path.endswith("/m.pkl") and data == b"\x80\x04weights"


async def test_upload_urls_are_logged_without_their_sas_signature(
    ws: Any, fake: Any, caplog: Any
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    await ws.create_model(ModelSpec(name="sklearn-demo", path=str(EXAMPLES / "model")))
    assert fake.blobs  # uploaded through the SAS URL
    assert "/blob/" in caplog.text  # httpx logged the request...
    assert fake.sas_sig not in caplog.text  # ...without the signature
