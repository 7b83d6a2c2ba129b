"""Issue 3's bad input, as the control plane sees it: a clear typed error, nothing changed.

Each request is refused twice where it matters: by the client's own checks, and by
the daemon when the same request arrives raw on its socket (another client, an old
CLI), so the rules hold whatever sends the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from modeldeck.services.api.domain import (
    ClusterPurpose,
    ClusterSpec,
    EndpointPatch,
    EndpointSpec,
    ModelSpec,
    to_dict,
)
from modeldeck.services.api.errors import CapacityExceeded, Conflict, InvalidInput, NotFound

pytestmark = pytest.mark.e2e


@pytest.fixture
async def raw(daemon_home) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """Straight to the daemon's socket, past the client's checks."""
    sock = str(daemon_home.state / "modeldeck.sock")
    async with httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=sock), base_url="http://modeldeck", timeout=30
    ) as client:
        yield client


def refused(resp: httpx.Response, code: str, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    return err


async def blue_with_traffic(ws, h, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    await h.make_endpoint(ws, endpoint)
    await h.wait(await ws.create_deployment(h.deployment("blue", endpoint), all_traffic=True))
    await h.wait(await ws.create_deployment(h.deployment("green", endpoint, instances=0)))


async def test_traffic_must_add_up_to_100(workspace, h, raw) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await blue_with_traffic(ws, h, "total-ep")
    before = await h.snapshot(ws)
    with pytest.raises(InvalidInput) as err:
        await ws.update_endpoint("total-ep", EndpointPatch(traffic={"blue": 90, "green": 5}))
    assert err.value.field == "traffic" and "add up to 95" in err.value.message
    assert err.value.fix
    resp = await raw.patch("/v1/endpoints/total-ep", json={"traffic": {"blue": 90, "green": 5}})
    assert "add up to 95" in refused(resp, "InvalidInput", 400)["message"]
    resp = await raw.patch("/v1/endpoints/total-ep", json={"traffic": {"blue": 101, "green": -1}})
    refused(resp, "InvalidInput", 400)
    resp = await raw.patch("/v1/endpoints/total-ep", json={"traffic": {"blue": "lots"}})
    refused(resp, "InvalidInput", 400)
    assert await h.snapshot(ws) == before


async def test_traffic_and_mirror_only_to_existing_deployments(workspace, h, raw) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await blue_with_traffic(ws, h, "unknown-ep")
    before = await h.snapshot(ws)
    with pytest.raises(InvalidInput) as err:
        await ws.update_endpoint("unknown-ep", EndpointPatch(traffic={"blue": 50, "purple": 50}))
    assert err.value.field == "traffic.purple"
    assert "no deployment 'purple'" in err.value.message and "blue, green" in (err.value.fix or "")
    with pytest.raises(InvalidInput) as err:
        await ws.update_endpoint("unknown-ep", EndpointPatch(mirror_traffic={"purple": 10}))
    assert err.value.field == "mirror_traffic.purple"
    # a mirror never goes to a deployment with live traffic, and copies at most 50%
    with pytest.raises(InvalidInput) as err:
        await ws.update_endpoint("unknown-ep", EndpointPatch(mirror_traffic={"blue": 10}))
    assert "100% of live traffic" in err.value.message
    resp = await raw.patch("/v1/endpoints/unknown-ep", json={"mirror_traffic": {"green": 60}})
    refused(resp, "InvalidInput", 400)
    # moving live traffic onto the mirrored deployment is refused too
    await h.wait(
        await ws.update_endpoint("unknown-ep", EndpointPatch(mirror_traffic={"green": 10}))
    )
    mirrored = await h.snapshot(ws)
    with pytest.raises(InvalidInput):
        await ws.update_endpoint("unknown-ep", EndpointPatch(traffic={"blue": 50, "green": 50}))
    assert await h.snapshot(ws) == mirrored
    await h.wait(await ws.update_endpoint("unknown-ep", EndpointPatch(mirror_traffic={})))
    again = await h.snapshot(ws)
    # the records as before, at a later revision: two changes were made to get there
    rev_before = {e["name"]: int(e.pop("revision")) for e in before["endpoints"]}
    rev_again = {e["name"]: int(e.pop("revision")) for e in again["endpoints"]}
    assert again == before and rev_again["unknown-ep"] > rev_before["unknown-ep"]


async def test_a_seventh_deployment_is_refused(workspace, h, daemon_home) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await h.make_endpoint(ws, "seven-ep")
    for i in range(6):
        await h.wait(await ws.create_deployment(h.deployment(f"dep{i}", "seven-ep", instances=0)))
    before = await h.snapshot(ws)
    with pytest.raises(InvalidInput) as err:
        await ws.create_deployment(h.deployment("dep6", "seven-ep", instances=0))
    assert "at most 6 deployments" in err.value.message
    assert "delete a deployment" in (err.value.fix or "")
    assert await h.snapshot(ws) == before
    assert not (daemon_home.data / "code" / "seven-ep" / "dep6").exists()


async def test_a_deployment_with_traffic_cannot_be_deleted(workspace, h) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await blue_with_traffic(ws, h, "busy-ep")
    await h.wait(await ws.update_endpoint("busy-ep", EndpointPatch(mirror_traffic={"green": 20})))
    before = await h.snapshot(ws)
    with pytest.raises(Conflict) as err:
        await ws.delete_deployment("busy-ep", "blue")
    assert "100% of live traffic" in err.value.message
    assert "--traffic" in (err.value.fix or "")
    with pytest.raises(Conflict) as err:
        await ws.delete_deployment("busy-ep", "green")
    assert "20% mirrored traffic" in err.value.message
    assert await h.snapshot(ws) == before
    assert (await ws.invoke("busy-ep", b'{"data": [[1, 2, 3, 4]]}')).status == 200


async def test_a_deployment_that_does_not_fit_says_the_numbers(workspace, h, raw) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    # DevTest 1 x Standard_D2_v2: 2 vCPU, 7 GiB
    spec = ClusterSpec(
        name="small", purpose=ClusterPurpose.DEV_TEST, agent_count=1, vm_size="Standard_D2_v2"
    )
    await h.wait(await ws.create_cluster(spec))
    await h.make_endpoint(ws, "fit-ep", cluster="small")
    before = await h.snapshot(ws)
    with pytest.raises(CapacityExceeded) as err:
        await ws.create_deployment(h.deployment("big", "fit-ep", instances=2, cpu=1.5))
    message = err.value.message
    assert "needs 3 vCPU (2 x 1.5)" in message and "2 vCPU free of 2 total" in message
    assert "cluster scale" in (err.value.fix or "")
    with pytest.raises(CapacityExceeded) as err:
        await ws.create_deployment(h.deployment("fat", "fit-ep", memory_gb=8))
    assert "needs 8 GiB" in err.value.message and "7 GiB free of 7 total" in err.value.message
    assert await h.snapshot(ws) == before
    # what fits runs; then the free share is what is left
    await h.wait(await ws.create_deployment(h.deployment("one", "fit-ep", cpu=1.5)))
    cluster = await ws.get_cluster("small")
    assert (cluster.vcpus_used, cluster.vcpus_total) == (1.5, 2)
    with pytest.raises(CapacityExceeded) as err:
        await ws.create_deployment(h.deployment("two", "fit-ep", cpu=1))
    assert "needs 1 vCPU" in err.value.message and "0.5 vCPU free of 2 total" in err.value.message
    # an update is measured without its own current share
    one = await ws.get_deployment("fit-ep", "one")
    with pytest.raises(CapacityExceeded) as err:
        await ws.update_deployment(h.deployment("one", "fit-ep", cpu=1, instances=3))
    assert (
        "needs 3 vCPU (3 x 1)" in err.value.message
        and "2 vCPU free of 2 total" in err.value.message
    )
    assert (await ws.get_deployment("fit-ep", "one")).spec == one.spec
    # a DevTest cluster below 2 vCPU is refused, FastProd below 12 too, with the fix
    with pytest.raises(InvalidInput) as err:
        await ws.create_cluster(ClusterSpec(name="tiny", agent_count=2, vm_size="Standard_D3_v2"))
    assert "needs at least 12 vCPU" in err.value.message and "DevTest" in (err.value.fix or "")
    resp = await raw.post(
        "/v1/clusters", json={"name": "tiny", "agent_count": 2, "vm_size": "Standard_D3_v2"}
    )
    refused(resp, "InvalidInput", 400)
    # a node count sent as text is refused (it once reached the capacity math and failed)
    resp = await raw.post(
        "/v1/clusters", json={"name": "tiny", "agent_count": "3", "vm_size": "Standard_D3_v2"}
    )
    assert refused(resp, "InvalidInput", 400)["details"]["field"] == "agent_count"
    assert "tiny" not in {c.name for c in await ws.list_clusters()}


async def test_model_path_and_scoring_script_are_checked(  # type: ignore[no-untyped-def]
    workspace, h, raw, tmp_path, daemon_home
) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await h.make_endpoint(ws, "files-ep")
    before = await h.snapshot(ws)
    missing = str(tmp_path / "no-such-model.pkl")
    with pytest.raises(InvalidInput) as err:
        await ws.create_model(ModelSpec(name="ghost", path=missing))
    assert err.value.field == "path" and "does not exist" in err.value.message
    resp = await raw.post("/v1/models", json={"name": "ghost", "path": missing})
    assert refused(resp, "InvalidInput", 400)["details"]["field"] == "path"
    # a scoring script without init() (or run())
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("def run(raw_data):\n    return raw_data\n")
    with pytest.raises(InvalidInput) as err:
        await ws.create_deployment(h.deployment("noinit", "files-ep", code=str(code)))
    assert err.value.field == "code_configuration.scoring_script"
    assert "no init()" in err.value.message and "def init()" in (err.value.fix or "")
    (code / "score.py").write_text("def init():\n    pass\n")
    with pytest.raises(InvalidInput) as err:
        await ws.create_deployment(h.deployment("norun", "files-ep", code=str(code)))
    assert "no run()" in err.value.message
    # a code folder that does not exist, a model that is not registered
    with pytest.raises(InvalidInput) as err:
        await ws.create_deployment(h.deployment("nocode", "files-ep", code=str(tmp_path / "x")))
    assert err.value.field == "code_configuration.code"
    with pytest.raises(InvalidInput) as err:
        await ws.create_deployment(h.deployment("nomodel", "files-ep", model="azureml:ghost:3"))
    assert err.value.field == "model" and "model create" in (err.value.fix or "")
    assert await h.snapshot(ws) == before
    assert not (daemon_home.data / "models" / "ghost").exists()
    assert not (daemon_home.data / "code" / "files-ep").exists()


async def test_names_duplicates_and_unknown_fields(workspace, h, raw) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await h.make_endpoint(ws, "names-ep")
    await h.wait(await ws.create_deployment(h.deployment("blue", "names-ep", instances=0)))
    before = await h.snapshot(ws)
    with pytest.raises(InvalidInput) as err:
        await ws.create_endpoint(EndpointSpec(name="9lives", compute="myaks"))
    assert err.value.field == "name" and "starting with a letter" in err.value.message
    resp = await raw.post("/v1/endpoints", json={"name": "a_b", "compute": "myaks"})
    assert refused(resp, "InvalidInput", 400)["details"]["field"] == "name"
    resp = await raw.post(
        "/v1/endpoints", json={"name": "colour-ep", "compute": "myaks", "colour": "red"}
    )
    assert "colour" in refused(resp, "InvalidInput", 400)["details"]["field"]
    with pytest.raises(Conflict):
        await ws.create_endpoint(EndpointSpec(name="names-ep", compute="myaks"))
    with pytest.raises(Conflict):
        await ws.create_cluster(ClusterSpec(name="myaks"))
    with pytest.raises(Conflict):
        await ws.create_deployment(h.deployment("blue", "names-ep", instances=0))
    with pytest.raises(Conflict):
        await ws.create_model(
            ModelSpec(name="sklearn-demo", path=str(h.EXAMPLES / "model"), version=1)
        )
    with pytest.raises(InvalidInput) as err:
        await ws.create_endpoint(EndpointSpec(name="orphan-ep", compute="nowhere"))
    assert err.value.field == "compute"
    with pytest.raises(NotFound):
        await ws.create_deployment(h.deployment("blue", "no-such-ep", instances=0))
    # a cluster with endpoints is not deleted
    with pytest.raises(Conflict) as err:
        await ws.delete_cluster("myaks")
    assert "names-ep" in err.value.message
    assert await h.snapshot(ws) == before
    assert to_dict(await ws.get_endpoint("names-ep"))["traffic"] == {}


async def test_concurrent_requests_cannot_both_take_the_last_capacity(workspace, h) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    spec = ClusterSpec(
        name="duo", purpose=ClusterPurpose.DEV_TEST, agent_count=1, vm_size="Standard_D2_v2"
    )
    await h.wait(await ws.create_cluster(spec))
    await h.make_endpoint(ws, "duo-ep", cluster="duo")
    results = await asyncio.gather(
        ws.create_deployment(h.deployment("left", "duo-ep", instances=0, cpu=1.5)),
        ws.create_deployment(h.deployment("right", "duo-ep", instances=0, cpu=1.5)),
        return_exceptions=True,
    )
    # instance_count 0 reserves nothing: both fit; now make both ask for one replica at once
    for r in results:
        assert not isinstance(r, BaseException), r
        await h.wait(r)
    results = await asyncio.gather(
        ws.update_deployment(h.deployment("left", "duo-ep", cpu=1.5)),
        ws.update_deployment(h.deployment("right", "duo-ep", cpu=1.5)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, CapacityExceeded)]
    accepted = [r for r in results if not isinstance(r, BaseException)]
    assert len(refused) == 1 and len(accepted) == 1, results
    assert "0.5 vCPU free of 2 total" in refused[0].message
    await h.wait(accepted[0])
    assert (await ws.get_cluster("duo")).vcpus_used == 1.5


async def test_malformed_requests_get_typed_errors(workspace, h, raw) -> None:  # type: ignore[no-untyped-def]
    await h.make_endpoint(workspace, "raw-ep")
    before = await h.snapshot(workspace)
    path = "/v1/endpoints/raw-ep/deployments"
    err = refused(await raw.post(path, json={"spec": {"name": "half"}}), "InvalidInput", 400)
    assert "model" in err["details"]["field"] and "required" in err["message"]
    spec = {"name": "typed", "model": "sklearn-demo:1", "resources": "lots"}
    spec["code_configuration"] = {"code": str(h.EXAMPLES / "blue"), "scoring_script": "score.py"}
    refused(await raw.post(path, json={"spec": spec}), "InvalidInput", 400)
    # numbers sent as text are refused, not computed with (they once failed in the engine)
    spec = {**spec, "resources": {}, "instance_count": "2"}
    err = refused(await raw.post(path, json={"spec": spec}), "InvalidInput", 400)
    assert err["details"]["field"] == "instance_count"
    spec = {**spec, "instance_count": 1, "request_settings": {"request_timeout_ms": "100"}}
    err = refused(await raw.post(path, json={"spec": spec}), "InvalidInput", 400)
    assert err["details"]["field"] == "request_settings.request_timeout_ms"
    refused(await raw.post(path, content=b"{not json"), "InvalidInput", 400)
    refused(await raw.post(path, json=["a", "list"]), "InvalidInput", 400)
    resp = await raw.post("/v1/endpoints/raw-ep/keys/regenerate", json={"key_type": "tertiary"})
    assert refused(resp, "InvalidInput", 400)["details"]["field"] == "key_type"
    resp = await raw.get(f"{path}/nope/logs", params={"lines": "many"})
    refused(resp, "InvalidInput", 400)
    refused(await raw.get(f"{path}/nope"), "NotFound", 404)
    assert await h.snapshot(workspace) == before
