"""The kubernetes driver against a loopback API server, through the real client and a kubeconfig."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import ClusterPurpose, ScaleSettings
from modeldeck.services.api.errors import InvalidInput, NotFound
from modeldeck.services.drivers.kubernetes import concurrency as cc
from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver
from modeldeck.services.drivers.kubernetes.rollout import RolloutFailed

NS = "ml"
MANAGED = "app.kubernetes.io/managed-by=modeldeck"


async def deploy(
    driver: KubernetesDriver, k: Any, *names: str, traffic: dict[str, int] | None = None
) -> None:
    await driver.apply_endpoint(k.route())
    for name in names:
        await driver.apply_deployment("ep", k.runtime(name), k.ProgressLog())
    if traffic is not None:
        await driver.apply_endpoint(k.route(traffic=traffic))


def route_of(fake: Any, name: str = "ep") -> dict:
    route = fake.get("httproutes", NS, name)
    assert route is not None
    return route


def weights(route: dict) -> dict[str, int]:
    return {b["name"]: b["weight"] for b in route["spec"]["rules"][-1]["backendRefs"]}


def header_rules(route: dict) -> dict[str, str]:
    return {
        r["matches"][0]["headers"][0]["value"]: r["backendRefs"][0]["name"]
        for r in route["spec"]["rules"]
        if r["matches"][0].get("headers")
    }


# --------------------------------------------------------------------------- attach


async def test_capacity_comes_from_the_nodes_allocatable(driver: KubernetesDriver) -> None:
    cap = await driver.capacity()
    assert cap.nodes == 4
    assert cap.vcpus == pytest.approx(3.86 + 4 + 4 + 4)
    assert cap.memory_gb == pytest.approx(64)
    assert cap.version == "v1.33.1"
    checked, notes = await driver.attach_check()
    assert checked == cap and notes == []


async def test_fastprod_needs_12_allocatable_vcpu(
    fake_factory: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_driver: Callable[..., KubernetesDriver],
    k: Any,
) -> None:
    small = fake_factory(
        nodes=[("n1", "3860m", "8Gi"), ("n2", "3860m", "8Gi"), ("n3", "3860m", "8Gi")]
    )
    tiny = fake_factory(nodes=[("n1", "1900m", "4Gi")])
    cfg = k.write_kubeconfig(tmp_path / "kc", {"small": (small.url, ""), "tiny": (tiny.url, "")})
    monkeypatch.setenv("KUBECONFIG", str(cfg))
    with pytest.raises(InvalidInput) as err:
        await make_driver(context="small").attach_check()
    assert err.value.field == "purpose"
    assert "11.58" in str(err.value) and "12" in str(
        err.value
    )  # 3 x 3.86 allocatable, not 12 capacity
    assert "--purpose DevTest" in (err.value.fix or "")
    cap, _ = await make_driver(context="small", purpose=ClusterPurpose.DEV_TEST).attach_check()
    assert cap.vcpus == pytest.approx(11.58)
    with pytest.raises(InvalidInput) as err:
        await make_driver(context="tiny", purpose=ClusterPurpose.DEV_TEST).attach_check()
    assert "at least 2" in str(err.value)


async def test_identity_is_server_and_namespace(
    kubeconfig: Path, make_driver: Callable[..., KubernetesDriver], fake: Any
) -> None:
    a = make_driver(name="prod")
    b = make_driver(name="prod-again")
    c = make_driver(name="other", namespace="default")
    assert a.identity == b.identity == (fake.url, "ml")
    assert c.identity != a.identity


async def test_attach_refuses_a_missing_namespace(
    kubeconfig: Path, make_driver: Callable[..., KubernetesDriver]
) -> None:
    with pytest.raises(InvalidInput) as err:
        await make_driver(namespace="nope").attach_check()
    assert "kubectl --context fake create namespace nope" in (err.value.fix or "")


# --------------------------------------------------------------------------- deploy


async def test_deploy_creates_labelled_valid_objects_and_waits_until_ready(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await driver.apply_endpoint(k.route())
    # the rollout goes on only once the driver has reported it under way
    release = fake.hold_rollouts()
    progress = k.ProgressLog()

    def report(fraction: float, message: str) -> None:
        progress(fraction, message)
        if message in ("waiting for the rollout to start", "0/2 new replicas ready"):
            release()

    await driver.apply_deployment("ep", k.runtime("blue", instance_count=2), report)
    fractions = [f for f, _ in progress.events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    messages = [m for _, m in progress.events]
    assert "2/2 new replicas ready" in messages
    assert messages.index("2/2 new replicas ready") > 0
    assert any(
        m in ("waiting for the rollout to start", "0/2 new replicas ready") for m in messages
    )
    kinds = {
        o["kind"]
        for plural in ("deployments", "services", "configmaps", "secrets", "httproutes")
        for o in fake.list(plural, NS, MANAGED)
    }
    assert kinds == {"Deployment", "Service", "ConfigMap", "Secret", "HTTPRoute"}
    assert fake.list("horizontalpodautoscalers", NS) == []
    assert fake.written and fake.invalid == []  # every manifest passed schema validation
    pods = fake.pods_of(NS, "ep-blue")
    assert len(pods) == 2
    status = await driver.deployment_status("ep", "blue")
    assert (status.ready_replicas, status.desired_replicas, status.error) == (2, 2, None)
    assert header_rules(route_of(fake)) == {"blue": "ep-blue"}


async def test_objects_are_written_by_server_side_apply_never_strategic_merge(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await deploy(driver, k, "blue", traffic={"blue": 100})
    await driver.apply_deployment("ep", k.runtime("blue", instance_count=2), k.ProgressLog())
    writes = [(m, p, c) for m, p, c in fake.requests if m in ("PATCH", "POST", "PUT")]
    assert writes
    for method, path, ctype in writes:
        if "/httproutes" in path:
            assert method in ("POST", "PUT") and ctype.startswith("application/json")
        else:
            assert (method, ctype) == ("PATCH", "application/apply-patch+yaml")


async def test_rollout_is_watched_and_polled_without_the_right_to_watch(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await driver.apply_endpoint(k.route())
    sel = f"{MANAGED},modeldeck.io/endpoint=ep,modeldeck.io/deployment=blue"
    # the rollout goes on once the driver watches it (bounded: released anyway after 60 s)
    release = fake.hold_rollouts()

    async def release_when_watched() -> None:
        for _ in range(1200):
            if len([w for w in fake.watch_requests if w[1] == sel]) >= 2:
                break
            await asyncio.sleep(0.05)
        release()

    releaser = asyncio.create_task(release_when_watched())
    await driver.apply_deployment("ep", k.runtime("blue"), k.ProgressLog())
    await releaser
    # woken by the changes, not a timer: one watch each on the Deployment and on its pods
    # (a crashing pod wakes it too), held for the whole rollout
    assert sorted(w for w in fake.watch_requests if w[1] == sel) == [
        ("deployments", sel),
        ("pods", sel),
    ]
    # RBAC without 'watch': the rollout is still followed to the end, by polling
    fake.deny("watch", "deployments")
    fake.deny("watch", "pods")
    watches = len(fake.watch_requests)
    progress = k.ProgressLog()
    await driver.apply_deployment("ep", k.runtime("blue", instance_count=2), progress)
    assert len(fake.watch_requests) == watches
    assert progress.events[-1] == (1.0, "'blue' is ready")
    status = await driver.deployment_status("ep", "blue")
    assert (status.ready_replicas, status.desired_replicas) == (2, 2)


async def test_traffic_change_sets_route_weights(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await deploy(driver, k, "blue", "green", traffic={"blue": 100, "green": 0})
    assert weights(route_of(fake)) == {"ep-blue": 100, "ep-green": 0}
    await driver.apply_endpoint(k.route(traffic={"blue": 90, "green": 10}))
    route = route_of(fake)
    assert weights(route) == {"ep-blue": 90, "ep-green": 10}
    assert header_rules(route) == {"blue": "ep-blue", "green": "ep-green"}
    assert "filters" not in route["spec"]["rules"][-1]


async def test_mirror_adds_a_request_mirror_filter(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await deploy(driver, k, "blue", "green", traffic={"blue": 100})
    await driver.apply_endpoint(k.route(traffic={"blue": 100}, mirror={"green": 20}))
    split = route_of(fake)["spec"]["rules"][-1]
    assert split["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "ep-green", "port": 80}, "percent": 20},
        }
    ]
    await driver.apply_endpoint(k.route(traffic={"blue": 100}))
    assert "filters" not in route_of(fake)["spec"]["rules"][-1]


async def test_update_rolls_out_new_pods_and_drops_the_old_configmap(
    driver: KubernetesDriver, fake: Any, k: Any, examples: Path
) -> None:
    await deploy(driver, k, "blue", traffic={"blue": 100})
    old_pods = {p["metadata"]["name"] for p in fake.pods_of(NS, "ep-blue")}
    old_cm = {c["metadata"]["name"] for c in fake.list("configmaps", NS, MANAGED)}
    rt = k.runtime("blue", instance_count=3, environment_variables={"MODE": "v2"})
    # new code: green's scoring script under blue's name
    rt = type(rt)(spec=rt.spec, model=rt.model, code_dir=str(examples / "green"))
    progress = k.ProgressLog()
    await driver.apply_deployment("ep", rt, progress)
    new_pods = {p["metadata"]["name"] for p in fake.pods_of(NS, "ep-blue")}
    assert len(new_pods) == 3 and not (new_pods & old_pods)
    new_cm = {c["metadata"]["name"] for c in fake.list("configmaps", NS, MANAGED)}
    assert len(new_cm) == 1 and not (new_cm & old_cm)
    assert progress.events[-1][0] == 1.0
    dep = fake.get("deployments", NS, "ep-blue")
    assert {"name": "MODE", "value": "v2"} in dep["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]
    assert weights(route_of(fake)) == {"ep-blue": 100}  # traffic untouched by the update


async def test_failed_update_is_rolled_back_and_the_previous_replicas_keep_serving(
    driver: KubernetesDriver, fake: Any, k: Any, examples: Path
) -> None:
    await deploy(driver, k, "blue", traffic={"blue": 100})
    before = fake.get("deployments", NS, "ep-blue")
    old_pods = {p["metadata"]["name"] for p in fake.pods_of(NS, "ep-blue")}
    old_cm = {c["metadata"]["name"] for c in fake.list("configmaps", NS, MANAGED)}
    rt = k.runtime("blue", environment="example.com/crash:2")
    rt = type(rt)(spec=rt.spec, model=rt.model, code_dir=str(examples / "green"))  # new code
    progress = k.ProgressLog()
    with pytest.raises(RolloutFailed) as err:
        await driver.apply_deployment("ep", rt, progress)
    text = str(err.value)
    assert "rolled back to the previous version" in text
    assert "CrashLoopBackOff" in text
    assert "FileNotFoundError" in text  # the previous container's log
    assert err.value.details.get("rolled_back") is True
    assert any("rolling 'blue' back" in msg for _, msg in progress.events)
    # the cluster holds the previous version again: template, spec annotation, ConfigMap
    after = fake.get("deployments", NS, "ep-blue")
    assert after["spec"]["template"] == before["spec"]["template"]
    ann = "modeldeck.io/spec"
    assert after["metadata"]["annotations"][ann] == before["metadata"]["annotations"][ann]
    assert {c["metadata"]["name"] for c in fake.list("configmaps", NS, MANAGED)} == old_cm
    # the failing ReplicaSet's pods go; the old ones were never taken down
    for _ in range(200):
        pods = {p["metadata"]["name"] for p in fake.pods_of(NS, "ep-blue")}
        if pods == old_pods:
            break
        await asyncio.sleep(0.05)
    assert pods == old_pods
    status = await driver.deployment_status("ep", "blue")
    assert (status.ready_replicas, status.desired_replicas, status.error) == (1, 1, None)
    lines = await driver.read_logs("ep", "blue", 50)
    assert any(ln.stream == "stdout" and "listening" in ln.text for ln in lines)  # old pod


async def test_rollback_restores_the_autoscaler_too(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await driver.apply_endpoint(k.route())
    scale = ScaleSettings(type="target_utilization", min_instances=2, max_instances=4)
    await driver.apply_deployment("ep", k.runtime("blue", scale_settings=scale), k.ProgressLog())
    hpa = fake.get("horizontalpodautoscalers", NS, "ep-blue")
    # the update drops autoscaling and breaks: the HPA is deleted, then put back
    broken = k.runtime("blue", instance_count=1, environment="example.com/crash:2")
    with pytest.raises(RolloutFailed) as err:
        await driver.apply_deployment("ep", broken, k.ProgressLog())
    assert err.value.details.get("rolled_back") is True
    again = fake.get("horizontalpodautoscalers", NS, "ep-blue")
    assert again is not None and again["spec"] == hpa["spec"]
    dep = fake.get("deployments", NS, "ep-blue")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] != "example.com/crash:2"
    status = await driver.deployment_status("ep", "blue")
    assert status.ready_replicas == 2


async def test_failed_first_version_stays_to_show_why(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await driver.apply_endpoint(k.route())
    with pytest.raises(RolloutFailed) as err:
        await driver.apply_deployment(
            "ep", k.runtime("blue", environment="example.com/crash:2"), k.ProgressLog()
        )
    assert "rolled back" not in str(err.value)  # nothing to go back to
    status = await driver.deployment_status("ep", "blue")
    assert status.ready_replicas == 0
    assert status.error and "CrashLoopBackOff" in status.error
    assert "FileNotFoundError" in status.error  # the previous container's log, for `show`
    lines = await driver.read_logs("ep", "blue", 50)  # the crashed init() is in the logs
    assert any(ln.stream == "previous" and "FileNotFoundError" in ln.text for ln in lines)


async def test_status_flags_a_newer_replicaset_that_crash_loops_beside_ready_replicas(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    """Issue 15 point 5: an update whose rollback could not be applied leaves the new
    ReplicaSet crash-looping beside the old one's ready replicas; the status must not read
    as all ready (kubectl rollout status: 1 old replicas are pending termination)."""
    await driver.apply_endpoint(k.route())
    await driver.apply_deployment("ep", k.runtime("blue"), k.ProgressLog())

    def report(fraction: float, message: str) -> None:
        if message.startswith("rolling 'blue' back"):  # the rollback's write is refused
            fake.fail(r"/deployments/ep-blue$", 422, method="PATCH", message="refused")

    broken = k.runtime("blue", environment="example.com/crash:2")
    with pytest.raises(RolloutFailed) as err:
        await driver.apply_deployment("ep", broken, report)
    assert "could not be rolled back" in str(err.value)
    status = await driver.deployment_status("ep", "blue")
    assert status.ready_replicas == 1  # the old replica still serves
    assert status.error is not None
    assert "ReplicaSet ep-blue-" in status.error and "not ready" in status.error
    assert "CrashLoopBackOff" in status.error
    assert "exit code 3" in status.error  # the last termination
    assert "FileNotFoundError" in status.error  # the crashed container's log
    assert "1 old replicas are pending termination" in status.error


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"environment": "example.com/does-not-exist:1"}, "ImagePullBackOff"),
        ({"resources": "huge"}, "FailedScheduling"),
    ],
)
async def test_why_not_ready_names_the_cause(
    driver: KubernetesDriver, fake: Any, k: Any, changes: dict, reason: str
) -> None:
    from modeldeck.services.api.domain import Resources, ResourceSet

    if changes.get("resources") == "huge":
        changes = {"resources": Resources(ResourceSet(cpu=64, memory_gb=1))}
    await driver.apply_endpoint(k.route())
    with pytest.raises(RolloutFailed) as err:
        await driver.apply_deployment("ep", k.runtime("blue", **changes), k.ProgressLog())
    assert reason in str(err.value)
    status = await driver.deployment_status("ep", "blue")
    assert status.ready_replicas == 0
    assert status.error and reason in status.error
    if reason == "FailedScheduling":
        assert "Insufficient cpu" in status.error
    events = await driver.events(endpoint="ep", name="blue")
    assert any(e["reason"] in ("Failed", "FailedScheduling") for e in events)


async def test_autoscale_creates_an_hpa_and_fixed_scale_removes_it(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await driver.apply_endpoint(k.route())
    scale = ScaleSettings(
        type="target_utilization",
        min_instances=2,
        max_instances=4,
        target_utilization_percentage=60,
    )
    await driver.apply_deployment("ep", k.runtime("blue", scale_settings=scale), k.ProgressLog())
    hpa = fake.get("horizontalpodautoscalers", NS, "ep-blue")
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert len(fake.pods_of(NS, "ep-blue")) == 2
    await driver.apply_deployment("ep", k.runtime("blue", instance_count=1), k.ProgressLog())
    assert fake.get("horizontalpodautoscalers", NS, "ep-blue") is None


async def test_back_to_a_fixed_count_gets_the_count_asked_not_the_hpas(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    """Issue 15 point 3: the HPA (min 2) is gone before the Deployment gets its 1 replica,
    else it scales it back to 2 (asked 1, got 2) and the update says Succeeded."""
    await driver.apply_endpoint(k.route())
    scale = ScaleSettings(type="target_utilization", min_instances=2, max_instances=4)
    await driver.apply_deployment("ep", k.runtime("blue", scale_settings=scale), k.ProgressLog())
    assert len(fake.pods_of(NS, "ep-blue")) == 2
    progress = k.ProgressLog()
    await driver.apply_deployment("ep", k.runtime("blue", instance_count=1), progress)
    assert fake.get("horizontalpodautoscalers", NS, "ep-blue") is None
    assert fake.get("deployments", NS, "ep-blue")["spec"]["replicas"] == 1
    assert "1/1 new replicas ready" in [m for _, m in progress.events]
    status = await driver.deployment_status("ep", "blue")
    assert (status.ready_replicas, status.desired_replicas) == (1, 1)
    assert len(fake.pods_of(NS, "ep-blue")) == 1


async def test_a_count_the_cluster_does_not_keep_fails_the_rollout(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    """Someone else's HPA (not modeldeck's) holds the Deployment at 2: the rollout waits for
    the count asked (1), not the cluster's spec.replicas, and says who scales it."""
    await driver.apply_endpoint(k.route())
    await driver.apply_deployment("ep", k.runtime("blue", instance_count=1), k.ProgressLog())
    fake.create_hpa(NS, "team-autoscaler", "ep-blue", min_replicas=2, max_replicas=3)
    with pytest.raises(RolloutFailed) as err:
        await driver.apply_deployment(
            "ep", k.runtime("blue", instance_count=1, description="new"), k.ProgressLog()
        )
    text = str(err.value)
    assert "2 replica(s) where 1 were asked" in text
    assert "HorizontalPodAutoscaler team-autoscaler" in text


async def test_delete_deployment_removes_its_objects_and_route_rules(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await deploy(driver, k, "blue", "green", traffic={"blue": 100, "green": 0})
    await driver.delete_deployment("ep", "green")
    assert fake.get("deployments", NS, "ep-green") is None
    assert fake.get("services", NS, "ep-green") is None
    assert fake.list("configmaps", NS, "modeldeck.io/deployment=green") == []
    assert fake.pods_of(NS, "ep-green") == []
    route = route_of(fake)
    assert header_rules(route) == {"blue": "ep-blue"} and weights(route) == {"ep-blue": 100}
    with pytest.raises(NotFound):
        await driver.deployment_status("ep", "green")
    await driver.delete_deployment("ep", "green")  # deleting twice is not an error


async def test_delete_endpoint_removes_everything_of_it(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await deploy(driver, k, "blue", traffic={"blue": 100})
    await driver.apply_endpoint(k.route("other"))
    await driver.delete_endpoint("ep")
    left = await driver.list_managed()
    assert {(m["kind"], m["endpoint"]) for m in left} == {
        ("Secret", "other"),
        ("HTTPRoute", "other"),
    }


async def test_state_comes_from_the_cluster(
    driver: KubernetesDriver, make_driver: Callable[..., KubernetesDriver], k: Any
) -> None:
    await deploy(driver, k, "blue", "green", traffic={"blue": 70, "green": 30})
    fresh = make_driver(name="prod-second-operator")  # nothing local: the cluster is the truth
    state = await fresh.list_state()
    assert state["endpoints"] == {
        "ep": {
            "traffic": {"blue": 70, "green": 30},
            "mirror_traffic": {},
            "route_changed_by": cc.who(),  # who wrote the route (its changed-by annotation)
        }
    }
    assert sorted((d["name"], d["ready_replicas"], d["model"]) for d in state["deployments"]) == [
        ("blue", 1, "azureml:demo:1"),
        ("green", 1, "azureml:demo:1"),
    ]


async def test_delete_resources_removes_only_what_modeldeck_made(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await deploy(driver, k, "blue", traffic={"blue": 100})
    fake._sync(
        fake._put_raw,
        "configmaps",
        NS,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "someone-elses"},
            "data": {},
        },
    )
    deleted = await driver.delete_resources()
    assert {m["kind"] for m in deleted} == {
        "HTTPRoute",
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
    }
    assert await driver.list_managed() == []
    assert fake.get("configmaps", NS, "someone-elses") is not None


async def test_dry_run_renders_without_sending(driver: KubernetesDriver, fake: Any, k: Any) -> None:
    before = len(fake.requests)
    objs = await driver.render_deployment("ep", k.runtime("blue"))
    objs += driver.render_endpoint(k.route(traffic={"blue": 100}))
    assert [o["kind"] for o in objs] == [
        "ConfigMap",
        "Deployment",
        "Service",
        "Secret",
        "HTTPRoute",
    ]
    assert len(fake.requests) == before
    assert all(o["metadata"]["namespace"] == NS for o in objs)


async def test_watch_reports_rollouts(driver: KubernetesDriver, fake: Any, k: Any) -> None:
    seen: list[tuple[str, int]] = []

    async def watch() -> None:
        async for kind, obj in driver.watch_deployments():
            seen.append((kind, int((obj.get("status") or {}).get("readyReplicas") or 0)))
            if kind == "MODIFIED" and seen[-1][1] == 1:
                return

    task = asyncio.create_task(watch())
    await deploy(driver, k, "blue")
    await asyncio.wait_for(task, 10)
    assert ("MODIFIED", 1) in seen


async def test_scoring_uri_uses_the_gateway_address(
    kubeconfig: Path, make_driver: Callable[..., KubernetesDriver]
) -> None:
    d = make_driver(tags={"modeldeck.io/gateway-url": "https://ml.example.com"})
    assert d.scoring_uri("ep") == "https://ml.example.com/api/v1/endpoint/ep/score"


async def test_contexts_from_several_kubeconfig_files(
    fake_factory: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_driver: Callable[..., KubernetesDriver],
    k: Any,
) -> None:
    import os

    east, west = fake_factory(), fake_factory(nodes=[("w1", "2", "8Gi")])
    a = k.write_kubeconfig(tmp_path / "east.yaml", {"east": (east.url, "")}, current="east")
    b = k.write_kubeconfig(tmp_path / "west.yaml", {"west": (west.url, "")}, current="west")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(a), str(b)]))
    d_east = make_driver(name="east", context=None)  # the current context of the first file
    d_west = make_driver(name="west", context="west", purpose=ClusterPurpose.DEV_TEST)
    assert d_east.identity == (east.url, "ml") and d_west.identity == (west.url, "ml")
    await deploy(d_west, k, "blue", traffic={"blue": 100})
    assert (await d_west.capacity()).vcpus == 2
    assert west.get("httproutes", NS, "ep") is not None
    assert east.get("httproutes", NS, "ep") is None


async def test_key_rotation_updates_the_secret_and_nothing_else(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    import base64
    import dataclasses

    await deploy(driver, k, "blue", traffic={"blue": 100})
    route_before = route_of(fake)
    pods_before = fake.pods_of(NS, "ep-blue")
    r = k.route(traffic={"blue": 100})
    rotated = dataclasses.replace(
        r, auth=dataclasses.replace(r.auth, primary_key="new-" + "p" * 40)
    )
    await driver.apply_endpoint(rotated)
    secret = fake.get("secrets", NS, "ep-keys")
    assert base64.b64decode(secret["data"]["primary-key"]).decode() == "new-" + "p" * 40
    assert base64.b64decode(secret["data"]["secondary-key"]).decode() == k.KEY2
    assert (
        route_of(fake)["metadata"]["resourceVersion"] == route_before["metadata"]["resourceVersion"]
    )
    assert fake.pods_of(NS, "ep-blue") == pods_before  # no restart: pods re-read the mounted keys
