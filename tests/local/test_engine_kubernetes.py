"""An attached Kubernetes cluster driven through the local control plane, end to end.

The API server is the Kubernetes tests' fake (tests/support/fake_apiserver.py): a
real HTTP server speaking the API server's wire protocol, with a controller that
rolls Deployments out. The daemon reaches it through KUBECONFIG, as a user's would.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import (
    ClusterSpec,
    DriverKind,
    EndpointPatch,
    KeyType,
    ProvisioningState,
)
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon

from tests.support import fake_apiserver

pytestmark = pytest.mark.e2e


@pytest.fixture
def fake() -> Iterator[Any]:
    server = fake_apiserver.FakeKube().start()
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
    config = fake_apiserver.write_kubeconfig(
        home / "kubeconfig", {"fake": (fake.url, "")}, current="fake"
    )
    with h.running_home(home, KUBECONFIG=str(config)):
        daemon.ensure_daemon()
        async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
            await h.wait(
                await ws.attach_cluster(
                    ClusterSpec(
                        name="aks",
                        driver=DriverKind.KUBERNETES,
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
            await h.wait(
                await ws.update_endpoint(
                    "kube-ep", EndpointPatch(traffic={"blue": 90, "green": 10})
                )
            )
            keys = await ws.get_keys("kube-ep")
            assert keys.primaryKey in _secret_values(fake)
            new = await ws.regenerate_keys("kube-ep", KeyType.PRIMARY)
            values = _secret_values(fake)  # the cluster has the new key when the call returns
            assert new.primaryKey in values and keys.primaryKey not in values
            assert any(line.deployment == "blue" for line in await ws.get_logs("kube-ep", "blue"))

            # get-logs --follow through the daemon: a pod that appears (scale-out) joins
            stream = ws.stream_logs("kube-ep", "blue", lines=5, follow=True)
            try:
                first = await asyncio.wait_for(anext(stream), 30)
                await h.wait(
                    await ws.update_deployment(h.deployment("blue", "kube-ep", instances=2))
                )

                async def joined() -> Any:
                    async for line in stream:
                        if line.replica != first.replica:
                            return line
                    raise AssertionError("the log stream ended")

                new_pod = await asyncio.wait_for(joined(), 30)
                assert new_pod.deployment == "blue"
                assert new_pod.text.startswith("modeldeck podserver")
            finally:
                await stream.aclose()

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
            await h.wait(
                await ws.update_endpoint(
                    "kube-ep", EndpointPatch(traffic={"blue": 0, "green": 100})
                )
            )
            await h.wait(await ws.delete_deployment("kube-ep", "blue"))
            assert "kube-ep-blue" not in _objects(fake, "deployments")
            await h.wait(await ws.delete_endpoint("kube-ep"))
            assert _objects(fake, "deployments") == {}
            await h.wait(await ws.detach_cluster("aks"))
            assert await ws.list_clusters() == []


def _managed(fake: Any) -> list[tuple[str, str]]:
    """(plural, name) of everything modeldeck made in namespace ml."""
    return sorted(
        (p, name)
        for (p, ns, name), obj in list(fake.store.items())
        if ns == "ml"
        and (obj.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/managed-by")
        == "modeldeck"
    )


async def test_attach_rules_identity_and_isolated_failures(h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    from modeldeck.services.api.domain import ClusterPurpose
    from modeldeck.services.api.errors import Conflict, InvalidInput

    fk = fake_apiserver
    main = fk.FakeKube().start()
    small = fk.FakeKube(nodes=[("n1", "1500m", "4Gi")]).start()
    flaky = fk.FakeKube().start()
    home = tmp_path_factory.mktemp("mda")
    # "fake" and "alias" are two contexts for one API server; every context's namespace is ml
    config = fk.write_kubeconfig(
        home / "kubeconfig",
        {
            "fake": (main.url, ""),
            "alias": (main.url, ""),
            "small": (small.url, ""),
            "flaky": (flaky.url, ""),
        },
        current="fake",
        namespace="ml",
    )

    def spec(name: str, ctx: str, ns: str | None = None, **kw: Any) -> ClusterSpec:
        return ClusterSpec(
            name=name, driver=DriverKind.KUBERNETES, kube_context=ctx, namespace=ns, **kw
        )

    try:
        with h.running_home(home, KUBECONFIG=str(config)):
            daemon.ensure_daemon()
            async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
                await h.wait(await ws.attach_cluster(spec("aks", "fake")))
                # no --namespace: the context's namespace, not "default"
                assert (await ws.get_cluster("aks")).namespace == "ml"
                with pytest.raises(Conflict) as dup:
                    await ws.attach_cluster(spec("aks2", "alias", "ml"))
                assert "'aks'" in dup.value.message and main.url in dup.value.message
                with pytest.raises(InvalidInput) as missing:
                    await ws.attach_cluster(spec("aks3", "fake", "nope"))
                assert missing.value.field == "namespace"
                assert "kubectl --context fake create namespace nope" in (missing.value.fix or "")
                for purpose, need in ((ClusterPurpose.FAST_PROD, 12), (ClusterPurpose.DEV_TEST, 2)):
                    with pytest.raises(InvalidInput) as weak:
                        await ws.attach_cluster(spec("tiny", "small", purpose=purpose))
                    assert weak.value.field == "purpose"
                    assert f"at least {need} allocatable vCPU" in weak.value.message
                    assert "1.5" in weak.value.message
                # another namespace of the same server is another cluster
                await h.wait(await ws.attach_cluster(spec("aks-default", "fake", "default")))
                await h.wait(await ws.attach_cluster(spec("flaky", "flaky")))
                await h.ensure_cluster(ws, "pool1")
                assert {c.name for c in await ws.list_clusters()} == {
                    "aks",
                    "aks-default",
                    "flaky",
                    "pool1",
                }

                # one cluster answers slowly, then not at all: the others are listed, with it
                flaky.delay(r"^/api/v1/nodes", 30.0)
                for _ in range(2):
                    clusters = {c.name: c for c in await asyncio.wait_for(ws.list_clusters(), 25.0)}
                    assert set(clusters) == {"aks", "aks-default", "flaky", "pool1"}
                    assert clusters["flaky"].error, clusters["flaky"]
                    for ok in ("aks", "aks-default", "pool1"):
                        assert clusters[ok].error is None and clusters[ok].vcpus_total > 0
                    flaky.stop()  # the second round: a closed port

                # a deployment waiting for a node says why, while it waits
                await h.ensure_model(ws)
                await h.make_endpoint(ws, "sched-ep", cluster="aks")
                await ws.create_deployment(h.deployment("big", "sched-ep", cpu=5.0))
                for _ in range(400):
                    big = await ws.get_deployment("sched-ep", "big")
                    if big.error:
                        break
                    await asyncio.sleep(0.05)
                assert big.provisioning_state is ProvisioningState.CREATING
                assert "FailedScheduling" in (big.error or "")
                assert "Insufficient cpu" in (big.error or "")
    finally:
        for server in (main, small, flaky):
            server.stop()


async def test_dry_run_not_ready_metrics_note_and_detach(h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    from modeldeck.services.api.domain import EndpointSpec
    from modeldeck.services.api.errors import BackendError, InvalidInput

    fk = fake_apiserver
    fake = fk.FakeKube(metrics_server=False).start()
    home = tmp_path_factory.mktemp("mdd")
    config = fk.write_kubeconfig(home / "kubeconfig", {"fake": (fake.url, "")}, current="fake")
    aks = ClusterSpec(name="aks", driver=DriverKind.KUBERNETES, kube_context="fake", namespace="ml")
    try:
        with h.running_home(home, KUBECONFIG=str(config)):
            daemon.ensure_daemon()
            async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
                attached = await h.wait(await ws.attach_cluster(aks))
                # `cluster attach` prints its notes as warnings: no metrics server here
                assert "note: the metrics server is not installed" in attached.message
                await h.ensure_model(ws)
                await h.make_endpoint(ws, "kube-ep", cluster="aks")
                await h.make_endpoint(ws, "pool-ep", cluster="pool1")
                keys = await ws.get_keys("kube-ep")

                # --dry-run: the manifests, nothing applied, no key in them
                before = _managed(fake)
                objs = await ws.render_manifests(EndpointSpec(name="ep2", compute="azureml:aks"))
                assert [o["kind"] for o in objs] == ["Secret", "HTTPRoute"]
                shown = {base64.b64decode(v).decode() for v in objs[0]["data"].values()}
                assert keys.primaryKey not in shown and "key" in shown
                objs = await ws.render_manifests(h.deployment("blue", "kube-ep"), all_traffic=True)
                kinds = [o["kind"] for o in objs]
                assert kinds == ["ConfigMap", "Deployment", "Service", "HTTPRoute"]
                refs = objs[-1]["spec"]["rules"][-1]["backendRefs"]  # the split comes last
                assert [(r["name"], r["weight"]) for r in refs] == [("kube-ep-blue", 100)]
                assert _managed(fake) == before
                assert await ws.list_deployments("kube-ep") == []
                with pytest.raises(InvalidInput) as pool:
                    await ws.render_manifests(h.deployment("blue", "pool-ep"))
                assert pool.value.field == "--dry-run" and "pool" in pool.value.message

                await h.wait(
                    await ws.create_deployment(h.deployment("blue", "kube-ep"), all_traffic=True)
                )
                objs = await ws.render_manifests(
                    h.deployment("blue", "kube-ep", instances=3), update=True
                )
                assert objs[1]["spec"]["replicas"] == 3
                assert fake.get("deployments", "ml", "kube-ep-blue")["spec"]["replicas"] == 1

                # the metrics server is missing: said, not hidden
                report = await ws.get_metrics("kube-ep")
                assert [s.deployment for s in report.samples] == ["blue"]
                assert report.samples[0].cpu_percent is None
                assert "metrics server is not installed" in report.missing["kube-ep"]

                # a failed update is rolled back on the cluster; the previous version serves.
                # The cluster's controller takes a while to observe each change (as a real
                # one may under load): the command ends once it has taken the rollback in,
                # and show reads no failing ReplicaSet
                before = fake.get("deployments", "ml", "kube-ep-blue")["spec"]["template"]
                broken = h.deployment("blue", "kube-ep", environment="example.org/crash:2")
                fake.ready_delay = 1.0
                with pytest.raises(BackendError) as rolled:
                    await h.wait(await ws.update_deployment(broken))
                fake.ready_delay = 0.05
                assert "rolled back to the previous version" in rolled.value.message
                assert "CrashLoopBackOff" in rolled.value.message
                blue = await ws.get_deployment("kube-ep", "blue")
                assert blue.provisioning_state is ProvisioningState.SUCCEEDED
                assert blue.spec.environment != "example.org/crash:2"
                assert (blue.ready_replicas, blue.traffic, blue.error) == (1, 100, None)
                assert fake.get("deployments", "ml", "kube-ep-blue")["spec"]["template"] == before

                # why a deployment is not ready reaches `show`
                crash = h.deployment("crashy", "kube-ep", environment="example.org/crash:1")
                with pytest.raises(BackendError):
                    await h.wait(await ws.create_deployment(crash))
                shown_dep = await ws.get_deployment("kube-ep", "crashy")
                assert shown_dep.provisioning_state is ProvisioningState.FAILED
                assert "CrashLoopBackOff" in (shown_dep.error or "")
                assert "model.pkl" in (shown_dep.error or "")  # the previous container's log
                pull = h.deployment("pull", "kube-ep", environment="example.org/does-not-exist:1")
                with pytest.raises(BackendError):
                    await h.wait(await ws.create_deployment(pull))
                assert "ImagePullBackOff" in (
                    (await ws.get_deployment("kube-ep", "pull")).error or ""
                )

                # pools are not detached
                with pytest.raises(InvalidInput) as pooled:
                    await ws.detach_cluster("pool1")
                assert "cluster delete" in (pooled.value.fix or "")

                # detach forgets; everything keeps running on the cluster
                running = _managed(fake)
                assert ("deployments", "kube-ep-blue") in running
                assert ("httproutes", "kube-ep") in running
                await h.wait(await ws.detach_cluster("aks"))
                assert "aks" not in {c.name for c in await ws.list_clusters()}
                assert [e.name for e in await ws.list_endpoints()] == ["pool-ep"]
                assert _managed(fake) == running

                # attached again and detached with --delete-resources: what modeldeck made goes
                fake._sync(
                    fake._put_raw,
                    "configmaps",
                    "ml",
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "not-ours"}},
                )
                await h.wait(await ws.attach_cluster(aks))
                await h.wait(await ws.detach_cluster("aks", delete_resources=True))
                assert _managed(fake) == []
                assert ("configmaps", "ml", "not-ours") in fake.store
    finally:
        fake.stop()


# ---------------------------------------------------------------- two control planes, one cluster


class Operator:
    """One operator's control plane (its own records and data), in this process.

    Its follower is stopped after attaching, so its records are what it last read: the
    window in which another operator's change has reached the cluster but not these records
    (in a daemon, the follower or the next show closes it; the change must not be lost in it).
    Each write is made as the operator's user: ``changed-by`` on the cluster names them.
    """

    def __init__(self, root: Path, user: str, mp: pytest.MonkeyPatch) -> None:
        from modeldeck.services.local.controlplane.engine import Engine
        from modeldeck.services.local.controlplane.store.db import Store

        self.user = user
        self._mp = mp
        self.engine = Engine(Store(root / "workspace.db"), root / "data")

    def acting(self) -> Any:
        from modeldeck.services.drivers.kubernetes import concurrency

        self._mp.setattr(concurrency, "who", lambda: self.user)
        return self.engine

    async def done(self, op: Any) -> Any:
        """The operation once it ended; its typed error (as a client gets it) if it failed."""
        from modeldeck.services.api.errors import error_from_dict

        after = 0
        for _ in range(2000):  # bounded: only to avoid a hang
            op, after = await self.engine.wait_operation(op.id, after, 30.0)
            if op.done:
                break
        assert op.done, op
        if op.error:
            raise error_from_dict(op.error)
        return op

    async def close(self) -> None:
        await self.engine.close()
        self.engine.store.close()

    async def join(self, h: Any) -> None:
        from modeldeck.services.api.domain import ModelSpec
        from modeldeck.services.local.controlplane import adopt

        await self.engine.create_model(
            ModelSpec(name="sklearn-demo", path=str(h.EXAMPLES / "model"))
        )
        await self.engine.attach_cluster(
            ClusterSpec(
                name="aks", driver=DriverKind.KUBERNETES, kube_context="fake", namespace="ml"
            )
        )
        adopt.stop_following(self.engine, "aks")


def _live_endpoint(fake: Any) -> dict[str, Any]:
    from modeldeck.services.drivers.kubernetes import concurrency as cc

    return {
        **cc.route_fields(fake.get("httproutes", "ml", "pay-ep")),
        **cc.secret_fields(fake.get("secrets", "ml", "pay-ep-keys")),
    }


async def _alice_and_bob(
    fake: Any, h: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Operator, Operator]:
    """Alice makes endpoint pay-ep (blue 100%, green) on the cluster; Bob attaches it too."""
    from modeldeck.services.api.domain import EndpointSpec

    config = fake_apiserver.write_kubeconfig(
        tmp_path / "kubeconfig", {"fake": (fake.url, "")}, current="fake"
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    alice = Operator(tmp_path / "alice", "alice@jump1", monkeypatch)
    bob = Operator(tmp_path / "bob", "bob@jump2", monkeypatch)
    try:
        await alice.join(h)
        a = alice.acting()
        await alice.done(await a.create_endpoint(EndpointSpec(name="pay-ep", compute="aks")))
        blue = h.deployment("blue", "pay-ep", instances=1)
        await alice.done(await a.create_deployment(blue, all_traffic=True))
        await alice.done(await a.create_deployment(h.deployment("green", "pay-ep", code="green")))
        await bob.join(h)  # adopts the endpoint and both deployments
    except BaseException:
        for op in (alice, bob):
            await op.close()
        raise
    return alice, bob


async def test_two_control_planes_on_one_cluster_lose_no_write(  # type: ignore[no-untyped-def]
    fake, h, tmp_path, monkeypatch
) -> None:
    from modeldeck.services.api.domain import RequestSettings
    from modeldeck.services.api.errors import Conflict
    from modeldeck.services.drivers.kubernetes import concurrency as cc

    alice, bob = await _alice_and_bob(fake, h, tmp_path, monkeypatch)
    try:
        # alice's records list green at 0; the cluster's route does not name it
        assert alice.engine.store.endpoint("pay-ep").traffic == {"blue": 100, "green": 0}
        assert bob.engine.store.endpoint("pay-ep").traffic == {"blue": 100}
        # ... and that is no change: reading the cluster leaves alice's revision as it is
        revision = alice.engine.store.endpoint("pay-ep").revision
        assert (await alice.engine.get_endpoint("pay-ep")).revision == str(revision)

        # traffic: bob read before alice's change; his own change is refused, naming hers
        bob_read = await bob.engine.get_endpoint("pay-ep")
        await alice.acting().update_endpoint(
            "pay-ep", EndpointPatch(traffic={"blue": 90, "green": 10})
        )
        before = bob.engine.store.endpoint("pay-ep")
        with pytest.raises(Conflict) as refused:
            await bob.acting().update_endpoint(
                "pay-ep",
                EndpointPatch(traffic={"blue": 50, "green": 50}),
                if_revision=bob_read.revision,
            )
        err = refused.value
        assert "alice@jump1" in err.message and "traffic" in err.message, err.message
        assert err.details["by"] == "alice@jump1"
        assert err.details["changed"]["traffic.blue"] == [100, 90]
        assert err.details["changed"]["traffic.green"][1] == 10
        assert err.exit_code == 4 and err.http_status == 409
        assert bob.engine.store.endpoint("pay-ep") == before  # bob's records: as they were
        assert _live_endpoint(fake)["traffic"] == {"blue": 90, "green": 10}  # alice's change

        # once bob's workspace has read the cluster (and taken alice's traffic), his stale
        # revision is refused by his own records: they name alice too
        await bob.engine.get_endpoint("pay-ep")
        with pytest.raises(Conflict) as refused:
            await bob.acting().update_endpoint(
                "pay-ep",
                EndpointPatch(traffic={"blue": 50, "green": 50}),
                if_revision=bob_read.revision,
            )
        assert "by alice@jump1 on cluster 'aks': traffic.blue 100 -> 90" in refused.value.message

        # description and tags live with the endpoint on the cluster: bob's description and
        # alice's tags, each made on what its author read, both land
        await alice.acting().update_endpoint("pay-ep", EndpointPatch(tags={"team": "fraud"}))
        await bob.acting().update_endpoint(
            "pay-ep", EndpointPatch(description="scores card payments")
        )
        live = _live_endpoint(fake)
        assert (live["description"], live["tags"]) == ("scores card payments", {"team": "fraud"})
        assert live["traffic"] == {"blue": 90, "green": 10}
        for op in (alice, bob):  # each sees both when it reads again
            shown = await op.engine.get_endpoint("pay-ep")
            tags = {k: v for k, v in shown.tags.items() if k != "modeldeck.io/adopted"}
            assert (shown.description, tags) == ("scores card payments", {"team": "fraud"})

        # a deployment: alice scales it while bob (who read before) changes its timeout
        bob_dep = await bob.engine.get_deployment("pay-ep", "blue")
        await alice.done(
            await alice.acting().update_deployment(h.deployment("blue", "pay-ep", instances=2))
        )
        bob_spec = replace(
            h.deployment("blue", "pay-ep", instances=bob_dep.spec.instance_count),
            request_settings=RequestSettings(
                request_timeout_ms=7000, max_concurrent_requests_per_instance=4
            ),
        )
        await bob.done(await bob.acting().update_deployment(bob_spec))
        live_dep = cc.deployment_fields(fake.get("deployments", "ml", "pay-ep-blue"))
        assert live_dep["instance_count"] == 2  # alice's
        assert live_dep["request_settings"]["request_timeout_ms"] == 7000  # bob's
        assert fake.get("deployments", "ml", "pay-ep-blue")["spec"]["replicas"] == 2
        for op in (alice, bob):  # each sees both changes when it reads again
            seen = (await op.engine.get_deployment("pay-ep", "blue")).spec
            assert (seen.instance_count, seen.request_settings.request_timeout_ms) == (2, 7000)

        # the same field of a deployment: bob's operation fails with the Conflict; his
        # records keep the spec they had, the cluster alice's
        bob_dep = await bob.engine.get_deployment("pay-ep", "blue")
        await alice.done(
            await alice.acting().update_deployment(replace(bob_spec, instance_count=3))
        )
        with pytest.raises(Conflict) as refused:
            await bob.done(
                await bob.acting().update_deployment(replace(bob_spec, instance_count=1))
            )
        err = refused.value
        assert "alice@jump1" in err.message and "instance_count" in err.message, err.message
        assert err.details["changed"]["instance_count"] == [2, 3]
        kept = bob.engine.store.deployment("pay-ep", "blue")
        assert kept.spec.instance_count == bob_dep.spec.instance_count == 2
        assert kept.state is ProvisioningState.SUCCEEDED
        assert (
            cc.deployment_fields(fake.get("deployments", "ml", "pay-ep-blue"))["instance_count"]
            == 3
        )
    finally:
        for op in (alice, bob):
            await op.close()


async def test_the_cli_of_a_workspace_that_read_before_another_operator_changed(  # type: ignore[no-untyped-def]
    fake, h, tmp_path, monkeypatch, capsys
) -> None:
    """Bob's CLI against his control plane's real API (served here, on his socket): each
    command is held after its reads, just before its write, while Alice changes the cluster
    (a read refreshes Bob's records from the cluster: this is the window that is left)."""
    import threading

    from aiohttp import web
    from modeldeck.cli.main import main
    from modeldeck.services import paths
    from modeldeck.services.drivers.kubernetes import concurrency as cc
    from modeldeck.services.local.controlplane.api import build_app

    alice, bob = await _alice_and_bob(fake, h, tmp_path, monkeypatch)
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "bob-home"))
    for key in ("MODELDECK_WORKSPACE", "SSH_CONNECTION"):
        monkeypatch.delenv(key, raising=False)
    sock = paths.private_dir(paths.state_dir()) / "modeldeck.sock"
    runner = web.AppRunner(build_app(bob.engine, stop=asyncio.Event(), status=dict))
    await runner.setup()
    await web.UnixSite(runner, str(sock)).start()
    read, go = threading.Event(), threading.Event()

    def hold(method: str) -> None:
        real = getattr(LocalWorkspace, method)

        async def held(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if not read.is_set():
                read.set()
                await asyncio.to_thread(go.wait, 60)
            return await real(self, *args, **kwargs)

        monkeypatch.setattr(LocalWorkspace, method, held)

    async def bob_runs(command: list[str], meanwhile: Any) -> tuple[int, str]:
        """Bob's command, with Alice's change made between its read and its write."""
        read.clear()
        go.clear()
        bob.acting()
        cli = asyncio.create_task(asyncio.to_thread(main, [*command, "-o", "none"]))
        assert await asyncio.to_thread(read.wait, 60), "the command did not get to its write"
        alice.acting()
        await meanwhile()
        bob.acting()
        go.set()
        code = await asyncio.wait_for(cli, 120)
        return code, capsys.readouterr().err

    try:
        # traffic: refused with exit 4, naming the field and Alice; Bob's records unchanged
        hold("update_endpoint")
        before: list[Any] = []

        async def alice_moves_traffic() -> None:
            before.append(bob.engine.store.endpoint("pay-ep"))
            await alice.engine.update_endpoint(
                "pay-ep", EndpointPatch(traffic={"blue": 90, "green": 10})
            )

        code, err = await bob_runs(
            ["online-endpoint", "update", "-n", "pay-ep", "--traffic", "blue=50 green=50"],
            alice_moves_traffic,
        )
        assert code == 4, err
        assert "was changed on cluster 'aks' by alice@jump1" in err, err
        assert "your change touches traffic.blue, traffic.green too, so it was not applied" in err
        assert err.count("not applied") == 1, err
        assert bob.engine.store.endpoint("pay-ep") == before[0]
        assert cc.route_fields(fake.get("httproutes", "ml", "pay-ep"))["traffic"] == {
            "blue": 90,
            "green": 10,
        }

        # a deployment, the same field: the operation fails with the Conflict, exit 4
        hold("update_deployment")

        async def alice_scales(to: int) -> None:
            spec = (await alice.engine.get_deployment("pay-ep", "blue")).spec
            await alice.done(await alice.engine.update_deployment(replace(spec, instance_count=to)))

        code, err = await bob_runs(
            [
                "online-deployment",
                "update",
                "-n",
                "blue",
                "-e",
                "pay-ep",
                "--set",
                "instance_count=3",
            ],
            lambda: alice_scales(2),
        )
        assert code == 4, err
        assert "by alice@jump1" in err and "instance_count" in err, err
        assert bob.engine.store.deployment("pay-ep", "blue").spec.instance_count == 1
        live = cc.deployment_fields(fake.get("deployments", "ml", "pay-ep-blue"))
        assert live["instance_count"] == 2

        # other fields: both land (exit 0)
        code, err = await bob_runs(
            [
                "online-deployment",
                "update",
                "-n",
                "blue",
                "-e",
                "pay-ep",
                "--set",
                "request_settings.request_timeout_ms=7000",
            ],
            lambda: alice_scales(4),
        )
        assert code == 0, err
        live = cc.deployment_fields(fake.get("deployments", "ml", "pay-ep-blue"))
        assert (live["instance_count"], live["request_settings"]["request_timeout_ms"]) == (4, 7000)
    finally:
        go.set()
        await runner.cleanup()
        for op in (alice, bob):
            await op.close()


async def test_two_control_planes_racing_rounds_lose_nothing(  # type: ignore[no-untyped-def]
    fake, h, tmp_path, monkeypatch, capsys
) -> None:
    """Each round both operators read, then write at once (one event loop, their requests
    interleaved at the API server): the same field, one lands and the other is refused;
    different fields, both land."""
    from modeldeck.services.api.errors import Conflict
    from modeldeck.services.drivers.kubernetes import concurrency as cc

    rounds = 20
    this_user = cc.who
    alice, bob = await _alice_and_bob(fake, h, tmp_path, monkeypatch)
    monkeypatch.setattr(cc, "who", this_user)  # both write at once: one name for both here
    lost = refused = 0
    try:
        for i in range(rounds):
            for op in (alice, bob):
                await op.engine.get_endpoint("pay-ep")  # each reads the cluster first
            # never the same map, nor the one already live: those would change nothing
            maps = {"blue": 70 - i, "green": 30 + i}, {"blue": 10 + i, "green": 90 - i}
            got = await asyncio.gather(
                alice.engine.update_endpoint("pay-ep", EndpointPatch(traffic=maps[0])),
                bob.engine.update_endpoint("pay-ep", EndpointPatch(traffic=maps[1])),
                return_exceptions=True,
            )
            ok = [m for m, r in zip(maps, got, strict=True) if not isinstance(r, BaseException)]
            assert all(isinstance(r, Conflict) for r in got if isinstance(r, BaseException)), got
            assert len(ok) == 1, (i, got)
            refused += 1
            live = _live_endpoint(fake)["traffic"]
            lost += live != ok[0]

            for op in (alice, bob):
                await op.engine.get_endpoint("pay-ep")
            got = await asyncio.gather(
                alice.engine.update_endpoint("pay-ep", EndpointPatch(traffic=maps[0])),
                bob.engine.update_endpoint("pay-ep", EndpointPatch(description=f"round {i}")),
                return_exceptions=True,
            )
            assert not [r for r in got if isinstance(r, BaseException)], (i, got)
            live = _live_endpoint(fake)
            lost += (live["traffic"] != maps[0]) + (live["description"] != f"round {i}")
        with capsys.disabled():
            print(
                f"\nkubernetes, two control planes: lost updates in {2 * rounds} racing rounds: "
                f"{lost} (losers refused with Conflict: {refused})"
            )
        assert (lost, refused) == (0, rounds)
        assert cc.route_fields(fake.get("httproutes", "ml", "pay-ep"))["traffic"] == maps[0]
    finally:
        for op in (alice, bob):
            await op.close()


async def test_probes_not_given_get_az_mls_defaults_on_kubernetes(  # type: ignore[no-untyped-def]
    fake, h, tmp_path, monkeypatch
) -> None:
    """Issue 15.7: a deployment without probes gets az ml's defaults on Kubernetes (first
    probe after 10 s, every 10 s, not every second) in its pods and in `show`; the record
    and the spec annotation keep them unset."""
    from modeldeck.services.api.domain import EndpointSpec, Probe

    config = fake_apiserver.write_kubeconfig(
        tmp_path / "kubeconfig", {"fake": (fake.url, "")}, current="fake"
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    op = Operator(tmp_path / "op", "op@jump1", monkeypatch)
    try:
        await op.join(h)
        engine = op.acting()
        await op.done(await engine.create_endpoint(EndpointSpec(name="kube-ep", compute="aks")))
        await op.done(await engine.create_deployment(h.deployment("blue", "kube-ep")))
        made = fake.get("deployments", "ml", "kube-ep-blue")
        container = made["spec"]["template"]["spec"]["containers"][0]
        for key in ("livenessProbe", "readinessProbe"):
            assert container[key]["initialDelaySeconds"] == 10
            assert container[key]["periodSeconds"] == 10
            assert container[key]["timeoutSeconds"] == 2
            assert container[key]["failureThreshold"] == 30
        kube = (await engine.get_deployment("kube-ep", "blue")).spec
        assert kube.liveness_probe == kube.readiness_probe == Probe()
        assert Probe() == Probe(initial_delay=10, period=10, timeout=2, failure_threshold=30)
        # the spec annotation (what adoption reads back) keeps them unset
        recorded = json.loads(made["metadata"]["annotations"]["modeldeck.io/spec"])
        assert recorded["liveness_probe"] is None and recorded["readiness_probe"] is None
    finally:
        await op.close()
