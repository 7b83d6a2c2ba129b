"""Deployments on the fake ARM: Kubernetes bodies, LRO success and failure, traffic, logs, metrics."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import (
    CodeConfiguration,
    DeploymentSpec,
    OperationStatus,
    Probe,
    ProvisioningState,
    RequestSettings,
    Resources,
    ResourceSet,
    ScaleSettings,
)
from modeldeck.services.api.errors import Conflict, InvalidInput, ModeldeckError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def spec(name: str = "purple", **kw: Any) -> DeploymentSpec:
    base: dict[str, Any] = {
        "name": name,
        "endpoint_name": "my-endpoint",
        "model": "azureml:sklearn-demo:2",
        "code_configuration": CodeConfiguration(
            code=str(EXAMPLES / "blue"), scoring_script="score.py"
        ),
        "instance_count": 2,
        "resources": Resources(
            requests=ResourceSet(cpu=0.5, memory_gb=0.5), limits=ResourceSet(cpu=1, memory_gb=1)
        ),
        "request_settings": RequestSettings(
            request_timeout_ms=3000, max_concurrent_requests_per_instance=4, max_queue_wait_ms=1500
        ),
        "liveness_probe": Probe(initial_delay=10, period=5, timeout=2, failure_threshold=3),
        "environment_variables": {"MODE": "fast"},
        "environment": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest",
    }
    base.update(kw)
    return DeploymentSpec(**base)


async def test_create_deployment_sends_a_kubernetes_body(ws: Any, seeded: Any) -> None:
    handle = await ws.create_deployment(spec())
    progress = [op.progress async for op in handle.watch()]
    assert handle.operation.status is OperationStatus.SUCCEEDED
    assert progress == sorted(progress) and progress[-1] == 1.0
    put = seeded.calls("PUT", "/deployments/purple")[0].body
    props = put["properties"]
    assert props["endpointComputeType"] == "Kubernetes"
    assert props["model"].endswith("/models/sklearn-demo/versions/2")
    assert props["containerResourceRequirements"] == {
        "containerResourceRequests": {"cpu": "0.5", "memory": "512Mi"},
        "containerResourceLimits": {"cpu": "1", "memory": "1Gi"},
    }
    assert props["requestSettings"] == {
        "requestTimeout": "PT3S",
        "maxConcurrentRequestsPerInstance": 4,
        "maxQueueWait": "PT1.5S",
    }
    assert props["livenessProbe"]["initialDelay"] == "PT10S"
    assert props["livenessProbe"]["failureThreshold"] == 3
    assert props["scaleSettings"] == {"scaleType": "Default"}
    assert put["sku"] == {"name": "Default", "capacity": 2}
    assert props["environmentVariables"] == {"MODE": "fast"}
    # the code folder went to the workspace's storage and became a code asset
    assert props["codeConfiguration"]["scoringScript"] == "score.py"
    assert "/codes/modeldeck-" in props["codeConfiguration"]["codeId"]
    assert any(path.endswith("/score.py") for path in seeded.blobs)
    # the image became an environment asset
    assert "/environments/modeldeck-" in props["environmentId"]
    dep = await ws.get_deployment("my-endpoint", "purple")
    assert dep.provisioning_state is ProvisioningState.SUCCEEDED
    assert dep.spec.model == "azureml:sklearn-demo:2"
    assert dep.spec.request_settings.max_queue_wait_ms == 1500
    assert dep.spec.resources.requests.memory_gb == 0.5
    assert dep.desired_replicas == 2 and dep.traffic == 0


async def test_same_code_is_uploaded_once(ws: Any, seeded: Any) -> None:
    await (await ws.create_deployment(spec("purple"))).wait()
    uploads = len(seeded.blobs)
    await (await ws.create_deployment(spec("orange"))).wait()
    assert len(seeded.blobs) == uploads
    assert len(seeded.calls("PUT", "/codes/")) == 1


async def test_target_utilization_scale_settings(ws: Any, seeded: Any) -> None:
    s = spec(
        scale_settings=ScaleSettings(
            type="target_utilization",
            min_instances=1,
            max_instances=4,
            target_utilization_percentage=60,
            polling_interval=5,
        )
    )
    await (await ws.create_deployment(s)).wait()
    props = seeded.calls("PUT", "/deployments/purple")[0].body["properties"]
    assert props["scaleSettings"] == {
        "scaleType": "TargetUtilization",
        "minInstances": 1,
        "maxInstances": 4,
        "targetUtilizationPercentage": 60,
        "pollingInterval": "PT5S",
    }
    dep = await ws.get_deployment("my-endpoint", "purple")
    assert dep.spec.scale_settings.max_instances == 4


async def test_all_traffic_moves_the_whole_map_after_the_deployment(ws: Any, seeded: Any) -> None:
    await (await ws.create_deployment(spec(), all_traffic=True)).wait()
    ep = await ws.get_endpoint("my-endpoint")
    assert ep.traffic == {"blue": 0, "green": 0, "purple": 100}


async def test_failed_provisioning_shows_arms_errors_verbatim_with_a_hint(
    ws: Any, seeded: Any
) -> None:
    seeded.fail_deployments[("my-endpoint", "purple")] = {
        "code": "ResourceNotReady",
        "message": "User container has crashed or terminated.",
        "details": [
            {"code": "InitFailed", "message": "init() raised FileNotFoundError: model.pkl"},
        ],
    }
    handle = await ws.create_deployment(spec(), all_traffic=True)
    with pytest.raises(ModeldeckError) as info:
        await handle.wait()
    text = str(info.value)
    assert "ResourceNotReady: User container has crashed or terminated." in text
    assert "InitFailed: init() raised FileNotFoundError: model.pkl" in text
    assert "get-logs -e my-endpoint -n purple" in text  # the hint beside ARM's words
    assert info.value.details["arm_error"]["details"][0]["code"] == "InitFailed"
    dep = await ws.get_deployment("my-endpoint", "purple")
    assert dep.provisioning_state is ProvisioningState.FAILED
    assert dep.error and "User container has crashed" in dep.error
    # all_traffic never happened: the live map is untouched
    assert (await ws.get_endpoint("my-endpoint")).traffic == {"blue": 100, "green": 0}


async def test_create_deployment_validates_before_sending(ws: Any, seeded: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        await ws.create_deployment(spec(model="not a model"))
    assert info.value.field == "model"
    with pytest.raises(InvalidInput) as info:
        await ws.create_deployment(
            spec(
                code_configuration=CodeConfiguration(
                    code=str(EXAMPLES / "blue"), scoring_script="nope.py"
                )
            )
        )
    assert info.value.field == "code_configuration.scoring_script"
    with pytest.raises(Conflict):
        await ws.create_deployment(spec("blue"))
    assert seeded.calls("PUT") == []


async def test_a_missing_model_version_is_not_found(ws: Any, seeded: Any) -> None:
    with pytest.raises(ModeldeckError) as info:
        await ws.create_deployment(spec(model="azureml:sklearn-demo:9"))
    assert "sklearn-demo:9" in str(info.value)
    assert seeded.calls("PUT", "/deployments/") == []


async def test_update_deployment_keeps_the_endpoint_traffic(ws: Any, seeded: Any) -> None:
    await (await ws.update_deployment(spec("blue", instance_count=3))).wait()
    put = seeded.calls("PUT", "/deployments/blue")[-1].body
    assert put["sku"]["capacity"] == 3
    assert seeded.calls("PUT", suffix="/onlineEndpoints/my-endpoint") == []
    assert (await ws.get_endpoint("my-endpoint")).traffic == {"blue": 100, "green": 0}


async def test_delete_deployment_with_traffic_is_refused(ws: Any, seeded: Any) -> None:
    with pytest.raises(Conflict) as info:
        await ws.delete_deployment("my-endpoint", "blue")
    assert "100% of live traffic" in str(info.value)
    assert seeded.calls("DELETE") == []
    await (await ws.delete_deployment("my-endpoint", "green")).wait()
    assert [d.name for d in await ws.list_deployments("my-endpoint")] == ["blue"]


async def test_list_deployments_across_endpoints_carries_traffic(ws: Any, seeded: Any) -> None:
    seeded.add_endpoint("other", "myaks", traffic={"x": 100})
    seeded.add_deployment("other", "x")
    deps = await ws.list_deployments()
    assert {(d.endpoint_name, d.name, d.traffic) for d in deps} == {
        ("my-endpoint", "blue", 100),
        ("my-endpoint", "green", 0),
        ("other", "x", 100),
    }


async def test_seventh_deployment_is_refused(ws: Any, seeded: Any) -> None:
    for n in ("dep3", "dep4", "dep5", "dep6"):
        seeded.add_deployment("my-endpoint", n)
    with pytest.raises(InvalidInput) as info:
        await ws.create_deployment(spec("dep7"))
    assert "at most 6" in info.value.rule


async def test_logs_tail_and_storage_initializer_fallback(ws: Any, seeded: Any) -> None:
    seeded.logs[("my-endpoint", "blue", "InferenceServer")] = [
        f"2026-11-26T10:00:0{i}Z INFO line {i}" for i in range(5)
    ]
    lines = await ws.get_logs("my-endpoint", "blue", lines=3)
    assert [ln.text[-6:] for ln in lines] == ["line 2", "line 3", "line 4"]
    assert lines[0].ts < lines[-1].ts
    body = seeded.calls("POST", "/getLogs")[-1].body
    assert body == {"containerType": "InferenceServer", "tail": 3}
    seeded.logs[("my-endpoint", "green", "StorageInitializer")] = [
        "downloading model: 403 Forbidden"
    ]
    lines = await ws.get_logs("my-endpoint", "green")
    assert lines[0].text == "downloading model: 403 Forbidden"


async def test_stream_logs_follow_yields_only_new_lines(ws: Any, seeded: Any) -> None:
    key = ("my-endpoint", "blue", "InferenceServer")
    seeded.logs[key] = ["a", "b"]
    got: list[str] = []

    async def read() -> None:
        async for line in ws.stream_logs("my-endpoint", "blue", lines=10, follow=True):
            got.append(line.text)
            if line.text == "d":
                return

    task = asyncio.create_task(read())
    for _ in range(200):
        if got == ["a", "b"]:
            break
        await asyncio.sleep(0.01)
    seeded.logs[key] = ["a", "b", "c", "d"]
    await asyncio.wait_for(task, 10)
    assert got == ["a", "b", "c", "d"]


async def test_metrics_come_in_batches_not_per_deployment(ws: Any, seeded: Any) -> None:
    seeded.add_endpoint("other", "myaks", traffic={"x": 100})
    seeded.add_deployment("other", "x")
    seeded.metrics["my-endpoint"] = {
        "blue": {"RequestsPerMinute": 120, "RequestLatency_P50": 12.5, "RequestLatency_P99": 80},
        "green": {"RequestsPerMinute": 6},
    }
    seeded.deployment_metrics[("my-endpoint", "blue")] = {
        "CpuUtilizationPercentage": 40.0,
        "DeploymentCapacity": 2,
    }
    samples = {(s.endpoint, s.deployment): s for s in (await ws.get_metrics()).samples}
    blue = samples[("my-endpoint", "blue")]
    assert blue.requests_per_second == 2.0
    assert blue.latency_p50_ms == 12.5 and blue.latency_p99_ms == 80
    assert blue.cpu_percent == 80.0 and blue.replicas_desired == 2
    green = samples[("my-endpoint", "green")]
    assert green.requests_total == 6 and green.latency_p50_ms is None and green.cpu_percent is None
    assert ("other", "x") in samples
    batches = seeded.calls("POST", "/metrics:getBatch")
    assert len(batches) == 2  # endpoints, then deployments: not one call each
    assert sorted(len(b.body["resourceids"]) for b in batches) == [2, 3]
    assert seeded.calls("GET", "/providers/Microsoft.Insights/metrics") == []
    assert ws.tokens.for_scope("x").credential() is ws.tokens.credential()


async def test_metrics_fall_back_to_one_arm_call_per_endpoint(ws: Any, seeded: Any) -> None:
    seeded.broken["/metrics:getBatch"] = 403
    seeded.metrics["my-endpoint"] = {"blue": {"RequestsPerMinute": 60, "RequestLatency_P95": 30}}
    report = await ws.get_metrics("my-endpoint")
    samples = {s.deployment: s for s in report.samples}
    assert samples["blue"].requests_total == 60 and samples["blue"].latency_p95_ms == 30
    assert len(seeded.calls("GET", "/providers/Microsoft.Insights/metrics")) == 1
    assert "batch" in report.missing["*"]


async def test_metrics_failure_of_one_endpoint_keeps_the_others(ws: Any, seeded: Any) -> None:
    seeded.add_endpoint("other", "myaks", traffic={"x": 100})
    seeded.add_deployment("other", "x")
    seeded.metrics["other"] = {"x": {"RequestsPerMinute": 60}}
    seeded.broken["/metrics:getBatch"] = 403
    seeded.broken["/onlineEndpoints/my-endpoint/providers/Microsoft.Insights/metrics"] = 400
    report = await ws.get_metrics()
    by = {(s.endpoint, s.deployment): s for s in report.samples}
    assert by[("other", "x")].requests_total == 60
    assert by[("my-endpoint", "blue")].requests_total == 0  # shown, without data
    assert "my-endpoint" in report.missing


async def test_metrics_are_reused_within_their_ttl(ws: Any, seeded: Any) -> None:
    seeded.metrics["my-endpoint"] = {"blue": {"RequestsPerMinute": 60}}
    first = await ws.get_metrics()
    second = await ws.get_metrics()
    assert first == second and first.samples[0].requests_total == 60
    assert len(seeded.calls("POST", "/metrics:getBatch")) == 2  # endpoints + deployments, once


async def test_a_deployment_that_failed_elsewhere_says_where_to_look(ws: Any, seeded: Any) -> None:
    # failed in the portal, or on another machine: ARM keeps no reason on the resource
    seeded.add_deployment("my-endpoint", "broken", state="Failed")
    dep = await ws.get_deployment("my-endpoint", "broken")
    assert dep.provisioning_state is ProvisioningState.FAILED
    assert dep.error and "get-logs -e my-endpoint -n broken" in dep.error
    healthy = await ws.get_deployment("my-endpoint", "blue")
    assert healthy.error is None


async def test_memory_from_azures_percentage_and_the_listed_limits(ws: Any, seeded: Any) -> None:
    seeded.deployment_metrics[("my-endpoint", "blue")] = {
        "CpuMemoryUtilizationPercentage": 50.0,
        "DeploymentCapacity": 2,
    }
    # before any listing the instance size is unknown: no figure is made up
    before = {s.deployment: s for s in (await ws.get_metrics()).samples}
    assert before["blue"].memory_mb is None
    await ws.list_deployments()  # what the dashboard does on each refresh: no extra call
    after = {s.deployment: s for s in (await ws.get_metrics("my-endpoint")).samples}
    # 50% of 512Mi (the request; no limit set), on each of 2 instances
    assert after["blue"].memory_mb == 512.0
    assert after["green"].memory_mb is None  # no memory figure from Azure
    asked = [
        r.query["metricnames"].split(",")
        for r in seeded.calls("POST", "/metrics:getBatch")
        if r.query["metricnamespace"].endswith("/deployments")
    ]
    assert asked and all("CpuMemoryUtilizationPercentage" in a for a in asked)


async def test_probes_left_out_of_the_yaml_are_not_sent(ws: Any, seeded: Any) -> None:
    """Issue 16.3: no probe in the YAML, no probe block in the PUT (az ml sends none), so
    the service's defaults apply; show prints what the service returns, and sending that
    spec back (update from show) sends those values; a probe given is sent as given."""
    from modeldeck.services.specs.deployment import load_deployment, updated_deployment

    loaded = load_deployment(EXAMPLES / "blue.yml", name="purple")
    assert loaded.spec.liveness_probe is None and loaded.spec.readiness_probe is None
    await (await ws.create_deployment(loaded.spec)).wait()
    props = seeded.calls("PUT", "/deployments/purple")[0].body["properties"]
    assert "livenessProbe" not in props and "readinessProbe" not in props
    shown = (await ws.get_deployment("my-endpoint", "purple")).spec
    service = Probe(initial_delay=10, period=10, timeout=2, failure_threshold=30)
    assert shown.liveness_probe == shown.readiness_probe == service
    again = updated_deployment(shown, ["instance_count=2"]).spec
    await (await ws.update_deployment(again)).wait()
    props = seeded.calls("PUT", "/deployments/purple")[-1].body["properties"]
    assert (
        props["livenessProbe"]
        == props["readinessProbe"]
        == {
            "initialDelay": "PT10S",
            "period": "PT10S",
            "timeout": "PT2S",
            "failureThreshold": 30,
            "successThreshold": 1,
        }
    )
    given = Probe(initial_delay=3, period=4, timeout=5, failure_threshold=6, success_threshold=2)
    await (await ws.update_deployment(replace(loaded.spec, readiness_probe=given))).wait()
    props = seeded.calls("PUT", "/deployments/purple")[-1].body["properties"]
    assert "livenessProbe" not in props
    assert props["readinessProbe"] == {
        "initialDelay": "PT3S",
        "period": "PT4S",
        "timeout": "PT5S",
        "failureThreshold": 6,
        "successThreshold": 2,
    }
    assert (await ws.get_deployment("my-endpoint", "purple")).spec.readiness_probe == given
    assert seeded.schema_errors == []
