"""Issue 3's walkthrough, through the real Workspace API against a real daemon and gateway."""

from __future__ import annotations

import json
import os
import stat
from collections import Counter
from dataclasses import replace

import httpx
import pytest
from modeldeck.services.api.domain import (
    EndpointPatch,
    EndpointSpec,
    KeyType,
    OperationStatus,
    ProvisioningState,
    to_dict,
)
from modeldeck.services.api.errors import NotFound

pytestmark = pytest.mark.e2e

SAMPLE = b'{"data": [[1, 2, 3, 4], [10, 9, 8, 7]]}'


async def score(
    client: httpx.AsyncClient, uri: str, key: str | None, **headers: str
) -> httpx.Response:
    send = {"Content-Type": "application/json", **headers}
    if key is not None:
        send["Authorization"] = f"Bearer {key}"
    return await client.post(uri, content=SAMPLE, headers=send)


async def test_the_walkthrough(workspace, h) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    # cluster create --name myaks: 3 x Standard_D3_v2 = 12 vCPU, FastProd
    await h.ensure_cluster(ws, "myaks")
    cluster = await ws.get_cluster("myaks")
    assert (cluster.vcpus_total, cluster.agent_count, cluster.purpose.value) == (12, 3, "FastProd")
    # model create --name sklearn-demo --path ./model
    await h.ensure_model(ws)
    model = await ws.get_model("sklearn-demo")
    assert model.version == 1
    assert os.path.exists(os.path.join(model.path, "model.json"))
    assert model.path != str(h.EXAMPLES / "model")  # the workspace's own copy
    # online-endpoint create -f endpoint.yml
    await h.wait(
        await ws.create_endpoint(
            EndpointSpec(name="my-endpoint", compute="azureml:myaks", tags={"team": "demo"})
        )
    )
    ep = await ws.get_endpoint("my-endpoint")
    assert ep.provisioning_state is ProvisioningState.SUCCEEDED
    assert ep.scoring_uri.endswith("/api/v1/endpoint/my-endpoint/score")
    # online-deployment create --name blue --all-traffic
    op = await h.wait(
        await ws.create_deployment(h.deployment("blue", "my-endpoint"), all_traffic=True)
    )
    assert op.status is OperationStatus.SUCCEEDED
    assert (await ws.get_endpoint("my-endpoint")).traffic == {"blue": 100}
    # online-endpoint invoke
    result = await ws.invoke("my-endpoint", SAMPLE)
    assert result.status == 200 and result.deployment == "blue"
    assert json.loads(result.body)["predictions"] == [11.1, 24.85]
    # online-deployment update --set instance_count=2
    blue = await ws.get_deployment("my-endpoint", "blue")
    await h.wait(await ws.update_deployment(replace(blue.spec, instance_count=2)))
    blue = await ws.get_deployment("my-endpoint", "blue")
    assert (blue.ready_replicas, blue.desired_replicas, blue.spec.instance_count) == (2, 2, 2)
    assert (await ws.get_cluster("myaks")).vcpus_used == pytest.approx(1.0)
    # online-deployment create --name green (no traffic yet)
    await h.wait(await ws.create_deployment(h.deployment("green", "my-endpoint", code="green")))
    ep = await ws.get_endpoint("my-endpoint")
    assert ep.traffic == {"blue": 100, "green": 0}
    # invoke --deployment-name green: pinned whatever the split
    pinned = await ws.invoke("my-endpoint", SAMPLE, deployment="green")
    assert pinned.status == 200 and pinned.deployment == "green"
    assert json.loads(pinned.body)["version"] == "green"
    # get-logs --name green --lines 50
    logs = await ws.get_logs("my-endpoint", "green", lines=50)
    assert any("green: scoring 2 row(s)" in line.text for line in logs)
    assert all(line.deployment == "green" for line in logs)
    # get-credentials + curl with the key
    keys = await ws.get_keys("my-endpoint")
    assert keys.primaryKey != keys.secondaryKey and len(keys.primaryKey) >= 43
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await score(client, ep.scoring_uri, keys.primaryKey)).status_code == 200
        assert (await score(client, ep.scoring_uri, keys.secondaryKey)).status_code == 200
        assert (await score(client, ep.scoring_uri, "not-the-key")).status_code == 401
        assert (await score(client, ep.scoring_uri, None)).status_code == 401
        # update --traffic "blue=90 green=10": 100 requests split exactly
        await h.wait(
            await ws.update_endpoint(
                "my-endpoint", EndpointPatch(traffic={"blue": 90, "green": 10})
            )
        )
        assert (await ws.get_endpoint("my-endpoint")).traffic == {"blue": 90, "green": 10}
        seen: Counter[str] = Counter()
        for _ in range(100):
            resp = await score(client, ep.scoring_uri, keys.primaryKey)
            assert resp.status_code == 200
            seen[resp.headers["azureml-model-deployment"]] += 1
        assert seen == Counter({"blue": 90, "green": 10})
        # regenerate-keys --key-type primary: the old key is refused at once
        new = await ws.regenerate_keys("my-endpoint", KeyType.PRIMARY)
        assert new.primaryKey != keys.primaryKey and new.secondaryKey == keys.secondaryKey
        assert (await score(client, ep.scoring_uri, keys.primaryKey)).status_code == 401
        assert (await score(client, ep.scoring_uri, new.primaryKey)).status_code == 200
        assert (await score(client, ep.scoring_uri, keys.secondaryKey)).status_code == 200
        assert await ws.get_keys("my-endpoint") == new
        # update --traffic "blue=0 green=100"
        await h.wait(
            await ws.update_endpoint(
                "my-endpoint", EndpointPatch(traffic={"blue": 0, "green": 100})
            )
        )
        for _ in range(5):
            resp = await score(client, ep.scoring_uri, new.primaryKey)
            assert resp.headers["azureml-model-deployment"] == "green"
        # online-deployment delete --name blue
        await h.wait(await ws.delete_deployment("my-endpoint", "blue"))
        assert [d.name for d in await ws.list_deployments("my-endpoint")] == ["green"]
        assert (await ws.get_endpoint("my-endpoint")).traffic == {"green": 100}
        # online-endpoint delete --name my-endpoint
        await h.wait(await ws.delete_endpoint("my-endpoint"))
        with pytest.raises(NotFound):
            await ws.get_endpoint("my-endpoint")
        assert (await score(client, ep.scoring_uri, new.primaryKey)).status_code == 404
    assert (await ws.get_cluster("myaks")).vcpus_used == 0


async def test_secrets_stay_private(workspace, h, daemon_home) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await h.make_endpoint(ws, "secret-ep")
    await h.wait(
        await ws.create_deployment(
            h.deployment("blue", "secret-ep", code="green"), all_traffic=True
        )
    )
    keys = await ws.get_keys("secret-ep")
    assert (await ws.invoke("secret-ep", SAMPLE)).status == 200
    rotated = await ws.regenerate_keys("secret-ep", KeyType.SECONDARY)
    uri = (await ws.get_endpoint("secret-ep")).scoring_uri
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await score(client, uri, keys.primaryKey)).status_code == 200
        assert (await score(client, uri, keys.secondaryKey)).status_code == 401
        # a malformed header is refused and the key it carries is not echoed or logged
        resp = await client.post(uri, content=SAMPLE, headers={"Authorization": keys.primaryKey})
        assert resp.status_code == 401 and keys.primaryKey not in resp.text
    # modes: state dir 0700, socket and database 0600
    assert stat.S_IMODE(daemon_home.state.stat().st_mode) == 0o700
    assert stat.S_IMODE((daemon_home.state / "modeldeck.sock").stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon_home.data.stat().st_mode) == 0o700
    assert stat.S_IMODE((daemon_home.data / "workspace.db").stat().st_mode) == 0o600
    # the metrics history and both databases' WAL and shared memory files too
    for name in ("metrics.db", "metrics.db-wal", "metrics.db-shm", "workspace.db-wal"):
        assert stat.S_IMODE((daemon_home.data / name).stat().st_mode) == 0o600, name
    # the audit history shows a key change as a change, never a key (nor in the files)
    history = json.dumps(to_dict(await ws.get_history("secret-ep")))
    assert "regenerate-keys" in history
    assert not [
        k for k in (keys.primaryKey, keys.secondaryKey, rotated.secondaryKey) if k in history
    ]
    # keys are never in any log: the daemon's, nor the deployment's
    secrets = [keys.primaryKey, keys.secondaryKey, rotated.secondaryKey]
    logs = list(daemon_home.state.glob("daemon.log*")) + list(daemon_home.data.rglob("*.log*"))
    assert any(p.name.startswith("daemon.log") for p in logs)
    # the daemon's log records what changed (without any secret, checked below)
    daemon_log = (daemon_home.state / "daemon.log").read_text()
    assert "deployment.create secret-ep/blue: succeeded" in daemon_log
    assert "endpoint secret-ep: secondary key regenerated" in daemon_log
    assert any("deployment" in p.name for p in logs)
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a key is in {path}"
    await h.wait(await ws.update_endpoint("secret-ep", EndpointPatch(traffic={"blue": 0})))
    await h.wait(await ws.delete_endpoint("secret-ep"))
