"""Records and their lifecycles: models, code copies, failed updates, tokens, logs, metrics."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from modeldeck.services.api.domain import (
    AuthMode,
    ClusterPurpose,
    ClusterSpec,
    DeploymentRole,
    EndpointPatch,
    EndpointSpec,
    ModelSpec,
    OperationStatus,
    ProvisioningState,
)
from modeldeck.services.api.errors import (
    BackendError,
    CapacityExceeded,
    Conflict,
    InvalidInput,
    NotFound,
)
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon

pytestmark = pytest.mark.e2e

SAMPLE = b'{"data": [[1, 2, 3, 4]]}'


async def test_models_are_versioned_copies(workspace, h, tmp_path, daemon_home) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    weights = tmp_path / "m.pkl"
    weights.write_bytes(b"v1")
    one = await ws.create_model(ModelSpec(name="pickled", path=str(weights), tags={"k": "v"}))
    weights.write_bytes(b"v2")
    two = await ws.create_model(ModelSpec(name="pickled", path=str(weights)))
    assert (one.version, two.version) == (1, 2)
    assert one.path == str(daemon_home.data / "models" / "pickled" / "1" / "m.pkl")
    weights.unlink()  # the workspace does not depend on the original
    assert Path(one.path).read_bytes() == b"v1" and Path(two.path).read_bytes() == b"v2"
    assert (await ws.get_model("pickled")).version == 2
    assert (await ws.get_model("pickled", 1)).tags == {"k": "v"}
    assert [m.version for m in await ws.list_models("pickled")] == [1, 2]
    await ws.delete_model("pickled", 1)
    with pytest.raises(NotFound):
        await ws.get_model("pickled", 1)
    assert not (daemon_home.data / "models" / "pickled" / "1").exists()
    # a model in use stays
    await h.make_endpoint(ws, "model-ep")
    await h.wait(await ws.create_deployment(h.deployment("blue", "model-ep", instances=0)))
    with pytest.raises(Conflict) as err:
        await ws.delete_model("sklearn-demo", 1)
    assert "model-ep/blue" in err.value.message


async def test_code_is_copied_and_a_failed_update_keeps_the_previous_version(  # type: ignore[no-untyped-def]
    workspace, h, tmp_path
) -> None:
    ws = workspace
    code = tmp_path / "code"
    shutil.copytree(h.EXAMPLES / "blue", code)
    await h.make_endpoint(ws, "roll-ep")
    await h.wait(
        await ws.create_deployment(
            h.deployment("blue", "roll-ep", code=str(code)), all_traffic=True
        )
    )
    shutil.rmtree(code)  # the deployment runs from the workspace's copy
    before = await ws.get_deployment("roll-ep", "blue")
    assert str(tmp_path) not in before.spec.code_configuration.code
    await h.wait(await ws.update_deployment(replace(before.spec, instance_count=2)))
    assert (await ws.get_deployment("roll-ep", "blue")).ready_replicas == 2
    before = await ws.get_deployment("roll-ep", "blue")
    # a new version whose init() fails: the update fails, the old replicas keep serving
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "score.py").write_text(
        "def init():\n    raise RuntimeError('model file is corrupt')\n\n"
        "def run(raw_data):\n    return raw_data\n"
    )
    handle = await ws.update_deployment(
        h.deployment("blue", "roll-ep", code=str(broken), instances=2)
    )
    with pytest.raises(BackendError) as err:
        await h.wait(handle)
    assert "model file is corrupt" in err.value.message
    assert handle.operation.status is OperationStatus.FAILED
    after = await ws.get_deployment("roll-ep", "blue")
    assert after.spec == before.spec
    assert after.provisioning_state is ProvisioningState.SUCCEEDED
    assert after.ready_replicas == 2
    result = await ws.invoke("roll-ep", SAMPLE)
    assert result.status == 200 and json.loads(result.body)["version"] == "blue"
    ops = await ws.list_operations()
    failed = [o for o in ops if o.id == handle.id]
    assert failed and failed[0].error and failed[0].error["code"] == "BackendError"
    with pytest.raises(NotFound):
        await ws.get_operation("no-such-operation")


async def test_control_logs_follow_and_metrics(workspace, h) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await h.make_endpoint(ws, "watch-ep")
    await h.wait(
        await ws.create_deployment(
            h.deployment("green", "watch-ep", code="green"), all_traffic=True
        )
    )
    await h.wait(
        await ws.update_endpoint("watch-ep", EndpointPatch(control="green", description="watched"))
    )
    ep = await ws.get_endpoint("watch-ep")
    assert (ep.control, ep.description) == ("green", "watched")
    assert (await ws.get_deployment("watch-ep", "green")).spec.role is DeploymentRole.CONTROL
    with pytest.raises(InvalidInput):
        await ws.update_endpoint("watch-ep", EndpointPatch(control="nope"))

    stream = ws.stream_logs("watch-ep", "green", lines=5, follow=True)
    seen: list[str] = []

    async def read_until_scored() -> None:
        async for line in stream:
            seen.append(line.text)
            if "green: scoring" in line.text:
                return

    reader = asyncio.ensure_future(read_until_scored())
    await asyncio.sleep(0.2)
    assert (await ws.invoke("watch-ep", SAMPLE)).status == 200
    await asyncio.wait_for(reader, 30)
    await stream.aclose()
    assert any("green: scoring 1 row(s)" in t for t in seen)

    samples = (await ws.get_metrics("watch-ep")).samples
    assert [(s.endpoint, s.deployment) for s in samples] == [("watch-ep", "green")]
    assert samples[0].requests_total >= 1 and samples[0].replicas_ready == 1
    assert any(s.deployment == "green" for s in (await ws.get_metrics()).samples)


async def test_cluster_scale_and_delete(workspace, h) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    spec = ClusterSpec(
        name="scaler", purpose=ClusterPurpose.DEV_TEST, agent_count=1, vm_size="Standard_D2_v2"
    )
    await h.wait(await ws.create_cluster(spec))
    await h.wait(await ws.scale_cluster("scaler", 3))
    cluster = await ws.get_cluster("scaler")
    assert (cluster.agent_count, cluster.vcpus_total, cluster.memory_gb_total) == (3, 6, 21)
    await h.wait(await ws.create_endpoint(EndpointSpec(name="scale-ep", compute="scaler")))
    await h.ensure_model(ws)
    await h.wait(await ws.create_deployment(h.deployment("wide", "scale-ep", instances=0, cpu=3)))
    await h.wait(await ws.update_deployment(h.deployment("wide", "scale-ep", instances=1, cpu=3)))
    with pytest.raises(CapacityExceeded):
        await ws.scale_cluster("scaler", 1)
    assert (await ws.get_cluster("scaler")).agent_count == 3
    await h.wait(await ws.delete_endpoint("scale-ep"))
    await h.wait(await ws.delete_cluster("scaler"))
    with pytest.raises(NotFound):
        await ws.get_cluster("scaler")


async def test_aml_token_endpoints_and_expiry(h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    with h.running_home(tmp_path_factory.mktemp("mdt"), MODELDECK_TOKEN_TTL_S="2"):
        daemon.ensure_daemon()
        async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
            await h.ensure_cluster(ws)
            await h.ensure_model(ws)
            await h.wait(
                await ws.create_endpoint(
                    EndpointSpec(name="token-ep", compute="myaks", auth_mode=AuthMode.AML_TOKEN)
                )
            )
            await h.wait(
                await ws.create_deployment(h.deployment("blue", "token-ep"), all_traffic=True)
            )
            with pytest.raises(InvalidInput) as err:
                await ws.get_keys("token-ep")
            assert err.value.field == "auth_mode"
            token = await ws.get_token("token-ep")
            assert token.refreshAfterTimeUtc < token.expiryTimeUtc
            uri = (await ws.get_endpoint("token-ep")).scoring_uri
            assert (await ws.invoke("token-ep", SAMPLE)).status == 200
            headers = {"Authorization": f"Bearer {token.accessToken}"}
            async with httpx.AsyncClient(timeout=30) as client:
                assert (await client.post(uri, content=SAMPLE, headers=headers)).status_code == 200
                resp = None
                for _ in range(200):  # until the token has expired (bounded)
                    resp = await client.post(uri, content=SAMPLE, headers=headers)
                    if resp.status_code != 200:
                        break
                    await asyncio.sleep(0.05)
                assert resp is not None and resp.status_code == 401
                assert "expired" in resp.text
                fresh = await ws.get_token("token-ep")
                ok = await client.post(
                    uri, content=SAMPLE, headers={"Authorization": f"Bearer {fresh.accessToken}"}
                )
                assert ok.status_code == 200


async def test_an_operation_reports_progress_until_done(workspace, h) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await h.make_endpoint(ws, "progress-ep")
    handle = await ws.create_deployment(h.deployment("blue", "progress-ep", instances=2))
    seen = [op async for op in handle.watch()]
    assert seen[-1].status is OperationStatus.SUCCEEDED and seen[-1].progress == 1.0
    running = [op for op in seen if op.status is OperationStatus.RUNNING]
    assert any("replicas ready" in op.message for op in running)
    assert [op.progress for op in seen] == sorted(op.progress for op in seen)
    assert (await ws.get_operation(handle.id)).status is OperationStatus.SUCCEEDED
    assert (await ws.get_deployment("progress-ep", "blue")).ready_replicas == 2


async def test_probes_not_given_show_the_pools_own(workspace, h) -> None:  # type: ignore[no-untyped-def]
    """Issue 15.7: a local pool keeps its fast probing (every second from the start, its
    data plane's own supervision) for a deployment without probes, and `show` prints that;
    a probe given is shown (and used) as given."""
    from modeldeck.services.api.domain import Probe
    from modeldeck.services.local.dataplane.supervisor import LOCAL_PROBE

    ws = workspace
    await h.make_endpoint(ws, "probe-ep")
    await h.wait(await ws.create_deployment(h.deployment("blue", "probe-ep")))
    shown = (await ws.get_deployment("probe-ep", "blue")).spec
    assert shown.liveness_probe == shown.readiness_probe == LOCAL_PROBE
    assert (LOCAL_PROBE.initial_delay, LOCAL_PROBE.period) == (0, 1)
    given = Probe(initial_delay=0, period=2, failure_threshold=20)
    await h.wait(
        await ws.create_deployment(h.deployment("green", "probe-ep", readiness_probe=given))
    )
    shown = (await ws.get_deployment("probe-ep", "green")).spec
    assert shown.readiness_probe == given and shown.liveness_probe == LOCAL_PROBE
