"""services.api.health: which deployments are fit for traffic, when an endpoint is Degraded,
and which traffic changes need confirmation (pure functions)."""

from __future__ import annotations

from modeldeck.services.api import health
from modeldeck.services.api.domain import (
    AuthMode,
    CodeConfiguration,
    Deployment,
    DeploymentSpec,
    Endpoint,
    MetricSample,
    ProvisioningState,
)

INIT_FAILED = (
    "deployment 'red' of endpoint 'ep1' did not become ready: red-0: init() failed: "
    "RuntimeError: model file is corrupt (see log /x/deployment.log)\n"
    "last lines of its log:\n"
    "  Traceback (most recent call last):\n"
    '    File "/x/score.py", line 2, in init\n'
    "      raise RuntimeError('model file is corrupt')\n"
    "  RuntimeError: model file is corrupt\n"
    "  init() failed: RuntimeError: model file is corrupt\n"
    "log: /x/deployment.log"
)


def dep(
    name: str,
    ready: int = 1,
    desired: int = 1,
    state: ProvisioningState = ProvisioningState.SUCCEEDED,
    error: str | None = None,
) -> Deployment:
    spec = DeploymentSpec(
        name=name,
        endpoint_name="ep1",
        model="azureml:m:1",
        code_configuration=CodeConfiguration(code="c", scoring_script="score.py"),
    )
    return Deployment(
        spec=spec,
        provisioning_state=state,
        ready_replicas=ready,
        desired_replicas=desired,
        error=error,
    )


def endpoint(traffic: dict[str, int], mirror: dict[str, int] | None = None) -> Endpoint:
    return Endpoint(
        name="ep1",
        compute="pool",
        auth_mode=AuthMode.KEY,
        scoring_uri="",
        traffic=traffic,
        mirror_traffic=mirror or {},
        provisioning_state=ProvisioningState.SUCCEEDED,
    )


def sample(name: str, rps: float, error_rate: float, p95: float | None = 12.0) -> MetricSample:
    return MetricSample(
        ts=0.0,
        endpoint="ep1",
        deployment=name,
        requests_per_second=rps,
        error_rate=error_rate,
        latency_p95_ms=p95,
    )


RED = dep("red", 0, 1, ProvisioningState.FAILED, INIT_FAILED)
DEPS = [dep("blue"), dep("green"), RED]


def test_last_error_is_the_last_traceback_line_else_the_first_line() -> None:
    assert health.last_error(INIT_FAILED) == "RuntimeError: model file is corrupt"
    assert (
        health.last_error("pod p-1: 0/3 nodes are available (see log /x/y.log)")
        == "pod p-1: 0/3 nodes are available"
    )
    assert health.last_error(None) is None and health.last_error("\n \n") is None
    cut = health.last_error("ValueError: " + "x" * 500)
    assert cut is not None and cut.endswith("...") and len(cut) == health.LAST_ERROR_CHARS
    assert cut.isascii()  # drawn as is in a C locale too


def test_not_ready_failed_and_failing_are_sick_scaled_to_zero_is_not() -> None:
    assert health.deployment_health(RED).problem == "READY 0/1, Failed"
    starting = dep("b", 1, 2, ProvisioningState.UPDATING)
    assert health.deployment_health(starting).problem == "READY 1/2, Updating"
    assert health.deployment_health(dep("b", 0, 1)).problem == "READY 0/1"
    assert health.deployment_health(dep("b", 0, 0)).problem is None
    failing = health.deployment_health(dep("b"), sample("b", 5.0, 0.2))
    assert failing.problem == "error rate 20%" and failing.latency_p95_ms == 12.0
    fine = health.deployment_health(dep("b"), sample("b", 5.0, 0.05))
    assert fine.problem is None and fine.error_rate == 0.05
    # one failed request of two in the window is shown, not a verdict
    few = health.deployment_health(dep("b"), sample("b", 0.1, 0.5))
    assert few.problem is None and few.error_rate == 0.5
    # no request in the window: no error rate to judge (shown as –)
    idle = health.deployment_health(dep("b"), sample("b", 0.0, 0.0, None))
    assert idle.error_rate is None and idle.latency_p95_ms is None and not idle.sick


def test_an_endpoint_sending_traffic_or_a_mirror_to_a_sick_deployment_is_degraded() -> None:
    healthy = health.endpoint_health(endpoint({"blue": 100}), DEPS)
    assert health.health_dict(healthy)["status"] == "Healthy"
    assert [h.name for h in healthy] == ["blue", "green", "red"]
    live = health.endpoint_health(endpoint({"blue": 90, "red": 10}), DEPS)
    out = health.health_dict(live)
    assert out["status"] == "Degraded"
    assert out["reasons"] == [
        "red: READY 0/1, Failed, 10% of traffic; last error: RuntimeError: model file is corrupt"
    ]
    assert out["deployments"][2]["ready"] == "0/1"
    mirrored = health.endpoint_health(endpoint({"blue": 100}, {"red": 5}), DEPS)
    assert [h.name for h in health.degraded(mirrored)] == ["red"]
    assert "5% mirrored" in health.degraded(mirrored)[0].reason()
    # a healthy deployment failing its requests: Degraded too
    failing = health.endpoint_health(
        endpoint({"blue": 100}), DEPS, [sample("blue", 3.0, 0.5), sample("other", 1, 1)]
    )
    assert health.degraded(failing)[0].reason() == "blue: error rate 50%, 100% of traffic"


def test_only_a_change_giving_a_sick_deployment_more_traffic_needs_confirmation() -> None:
    ep = endpoint({"blue": 90, "green": 10})
    risks = health.traffic_risks(ep, DEPS, None, {"blue": 80, "green": 10, "red": 10})
    assert [(h.name, h.traffic) for h in risks] == [("red", 10)]
    assert "READY 0/1" in health.risks_message("ep1", risks)
    assert health.traffic_risks(ep, DEPS, None, mirror_traffic={"red": 10})[0].mirror_traffic == 10
    # healthy deployments: none
    assert health.traffic_risks(ep, DEPS, None, {"blue": 50, "green": 50}) == []
    # taking traffic away from red, or leaving its share as it is: none
    sick = endpoint({"blue": 80, "green": 10, "red": 10})
    assert health.traffic_risks(sick, DEPS, None, {"blue": 90, "green": 10, "red": 0}) == []
    assert health.traffic_risks(sick, DEPS, None, {"blue": 85, "green": 5, "red": 10}) == []
    assert health.traffic_risks(sick, DEPS, None, {"blue": 70, "green": 10, "red": 20})
    # a failing deployment (error rate) given more: asks too
    failing = [sample("green", 2.0, 0.3)]
    assert health.traffic_risks(ep, DEPS, failing, {"blue": 50, "green": 50})[0].name == "green"
