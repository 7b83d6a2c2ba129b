"""Generated input thrown at the validators: what comes out is a valid value or InvalidInput.

No other exception type may escape: the CLI and the control plane turn InvalidInput
into a clear message naming field, value, rule and fix; anything else would be a crash.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from modeldeck.services.api import validation
from modeldeck.services.api.domain import (
    ClusterPurpose,
    ClusterSpec,
    CodeConfiguration,
    DeploymentSpec,
    DriverKind,
    EndpointSpec,
    Probe,
    RequestSettings,
    Resources,
    ResourceSet,
    ScaleSettings,
)
from modeldeck.services.api.errors import InvalidInput

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.one_of(
    st.sampled_from(["blue", "green", "red", "canary", "b", "x" * 40, "9lives", "ok-", "a_b"]),
    st.text(max_size=12),
)
percent = st.one_of(
    st.integers(min_value=-200, max_value=300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.booleans(),
    st.none(),
)
traffic_maps = st.dictionaries(names, percent, max_size=7)
anything: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True),
    st.text(max_size=10),
)
numeric = st.one_of(
    st.integers(min_value=-10, max_value=10**6),
    st.floats(allow_nan=False, min_value=-5, max_value=1e6),
    st.text(max_size=5),
    st.booleans(),
)


@SETTINGS
@given(traffic_maps, st.lists(names, max_size=7))
def test_traffic_is_a_valid_map_or_invalid_input(value: dict[str, Any], deps: list[str]) -> None:
    try:
        out = validation.traffic(value, deps)
    except InvalidInput as err:
        assert err.field.startswith("traffic")
        assert err.fix, err
        return
    assert set(out) <= set(deps)
    assert all(isinstance(v, int) and 0 <= v <= 100 for v in out.values())
    assert sum(out.values()) in (0, 100)


@SETTINGS
@given(traffic_maps, traffic_maps, st.lists(names, max_size=7))
def test_mirror_is_valid_or_invalid_input(
    mirror: dict[str, Any], live: dict[str, Any], deps: list[str]
) -> None:
    live_ints = {k: v for k, v in live.items() if isinstance(v, int) and not isinstance(v, bool)}
    try:
        out = validation.mirror_traffic(mirror, live_ints, deps)
    except InvalidInput as err:
        assert err.field.startswith("mirror_traffic")
        assert err.fix, err
        return
    assert len(out) <= 1
    for dep, pct in out.items():
        assert dep in deps
        assert 0 <= pct <= validation.MAX_MIRROR_PERCENT
        assert live_ints.get(dep, 0) <= 0


@SETTINGS
@given(st.text(max_size=40))
def test_parse_traffic_text(text: str) -> None:
    try:
        out = validation.parse_traffic(text)
    except InvalidInput as err:
        assert err.fix, err  # every refusal says what to do
        return
    assert all(0 <= v <= 100 for v in out.values())


@SETTINGS
@given(
    st.dictionaries(names, st.integers(min_value=0, max_value=100), max_size=6),
    names,
    st.lists(names, max_size=6),
)
def test_fill_rest_gives_a_full_map(given_map: dict[str, int], rest: str, deps: list[str]) -> None:
    try:
        out = validation.fill_rest(given_map, rest, deps)
    except InvalidInput as err:
        assert err.fix, err  # every refusal says what to do
        return
    assert sum(out.values()) == 100
    assert out[rest] == 100 - sum(given_map.values())


@SETTINGS
@given(anything)
def test_name_rule(value: Any) -> None:
    try:
        out = validation.name(value)
    except InvalidInput as err:
        assert err.field == "name"
        assert err.fix, err
        return
    assert 3 <= len(out) <= 32


@SETTINGS
@given(st.lists(names, max_size=9, unique=True), names)
def test_deployment_count(existing: list[str], adding: str) -> None:
    try:
        validation.deployment_count(existing, adding)
    except InvalidInput as err:
        assert err.fix, err
        assert adding not in existing and len(existing) >= validation.MAX_DEPLOYMENTS_PER_ENDPOINT
        return
    assert adding in existing or len(existing) < validation.MAX_DEPLOYMENTS_PER_ENDPOINT


@SETTINGS
@given(
    st.one_of(names, st.just("myaks")),
    st.sampled_from(list(ClusterPurpose)),
    numeric,
    st.one_of(
        st.sampled_from(["Standard_D3_v2", "standard_d2_v2", "Standard_B2s"]), st.text(max_size=8)
    ),
)
@example("blue", ClusterPurpose.FAST_PROD, "1", "Standard_D3_v2")  # once a TypeError
def test_cluster_spec(name: str, purpose: ClusterPurpose, agents: Any, size: str) -> None:
    spec = ClusterSpec(
        name=name, driver=DriverKind.POOL, purpose=purpose, agent_count=agents, vm_size=size
    )
    try:
        validation.cluster_spec(spec)
    except InvalidInput as err:
        assert err.fix, err  # every refusal says what to do
        return


@SETTINGS
@given(
    st.one_of(names, st.text(max_size=6)),
    st.one_of(st.just("myaks"), names),
    st.dictionaries(st.text(max_size=5), anything, max_size=3),
)
def test_endpoint_spec(name: str, compute: str, tags: dict[str, Any]) -> None:
    try:
        validation.endpoint_spec(EndpointSpec(name=name, compute=compute, tags=tags))
    except InvalidInput as err:
        assert err.fix, err  # every refusal says what to do
        return


resource_sets = st.builds(
    ResourceSet,
    cpu=st.one_of(st.none(), numeric),
    memory_gb=st.one_of(st.none(), numeric),
    gpu=numeric,
)
deployment_specs = st.builds(
    DeploymentSpec,
    name=names,
    endpoint_name=st.one_of(st.just("my-endpoint"), names),
    model=st.one_of(
        st.sampled_from(["azureml:sklearn-demo:1", "sklearn-demo:2", "m@latest", ""]),
        st.text(max_size=12),
    ),
    code_configuration=st.builds(
        CodeConfiguration,
        code=st.text(max_size=5),
        scoring_script=st.one_of(st.just("score.py"), st.text(max_size=5)),
    ),
    instance_count=numeric,
    resources=st.builds(Resources, requests=resource_sets, limits=resource_sets),
    scale_settings=st.builds(
        ScaleSettings,
        type=st.sampled_from(["default", "target_utilization", "manual", ""]),
        min_instances=numeric,
        max_instances=numeric,
        target_utilization_percentage=numeric,
        polling_interval=numeric,
    ),
    request_settings=st.builds(
        RequestSettings,
        request_timeout_ms=numeric,
        max_concurrent_requests_per_instance=numeric,
        max_queue_wait_ms=numeric,
    ),
    liveness_probe=st.builds(
        Probe,
        initial_delay=numeric,
        period=numeric,
        timeout=numeric,
        failure_threshold=numeric,
        success_threshold=numeric,
    ),
    environment_variables=st.dictionaries(st.text(max_size=6), st.text(max_size=4), max_size=3),
    runtime=st.sampled_from(["default", "azmlinfsrv", "docker", ""]),
    tags=st.dictionaries(st.text(max_size=4), anything, max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deployment_specs)
def test_deployment_spec_only_raises_invalid_input(spec: DeploymentSpec) -> None:
    try:
        validation.deployment_spec(spec)
    except InvalidInput as err:
        assert err.field and err.rule
        assert err.fix, err
        return
    assert validation.NAME_RE.match(spec.name)
