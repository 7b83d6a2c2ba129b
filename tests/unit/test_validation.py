"""The rules of DESIGN.md: each bad input names the field, the value, the rule and the fix."""

from __future__ import annotations

import pytest
from modeldeck.services.api import validation as v
from modeldeck.services.api.domain import (
    ClusterPurpose,
    ClusterSpec,
    CodeConfiguration,
    DeploymentSpec,
    DriverKind,
    Resources,
    ResourceSet,
    ScaleSettings,
)
from modeldeck.services.api.errors import InvalidInput


@pytest.mark.parametrize("good", ["abc", "my-endpoint", "a1b", "A" * 32, "blue2"])
def test_names_that_follow_the_rule_pass(good: str) -> None:
    assert v.name(good) == good


@pytest.mark.parametrize("bad", ["ab", "1abc", "abc-", "a_bc", "a" * 33, "ab c", "", "-abc"])
def test_names_that_break_the_rule_say_the_rule(bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        v.name(bad, "endpoint name")
    assert err.value.field == "endpoint name"
    assert "3-32 characters" in err.value.rule
    assert repr(bad) in str(err.value) or f"'{bad}'" in str(err.value)


def test_traffic_must_total_100_and_says_the_total() -> None:
    with pytest.raises(InvalidInput) as err:
        v.traffic({"blue": 90, "green": 20}, ["blue", "green"])
    assert "add up to 110" in err.value.rule
    assert err.value.fix and "--rest" in err.value.fix


def test_traffic_all_zero_is_allowed() -> None:
    assert v.traffic({"blue": 0, "green": 0}, ["blue", "green"]) == {"blue": 0, "green": 0}


def test_traffic_to_an_unknown_deployment_names_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        v.traffic({"blue": 50, "red": 50}, ["blue", "green"])
    assert err.value.field == "traffic.red"
    assert "blue, green" in (err.value.fix or "")


@pytest.mark.parametrize("pct", [-1, 101, "ten", 5.5, True])
def test_traffic_percentages_are_integers_0_to_100(pct: object) -> None:
    with pytest.raises(InvalidInput):
        v.traffic({"blue": pct}, ["blue"])


def test_parse_traffic_reads_the_az_ml_form() -> None:
    assert v.parse_traffic("blue=90 green=10") == {"blue": 90, "green": 10}
    assert v.parse_traffic("blue=90,green=10") == {"blue": 90, "green": 10}
    with pytest.raises(InvalidInput):
        v.parse_traffic("blue:90")
    with pytest.raises(InvalidInput):
        v.parse_traffic("blue=90 blue=10")


def test_rest_takes_the_remainder_and_gives_a_full_map() -> None:
    full = v.fill_rest({"green": 20}, "blue", ["blue", "green", "red"])
    assert full == {"blue": 80, "green": 20, "red": 0}
    with pytest.raises(InvalidInput):
        v.fill_rest({"green": 120}, "blue", ["blue", "green"])
    with pytest.raises(InvalidInput):
        v.fill_rest({"green": 20}, "nope", ["blue", "green"])


def test_mirror_goes_to_one_deployment_without_live_traffic_at_most_50() -> None:
    live = {"blue": 100, "green": 0}
    assert v.mirror_traffic({"green": 10}, live, live) == {"green": 10}
    with pytest.raises(InvalidInput, match="live traffic"):
        v.mirror_traffic({"blue": 10}, live, live)
    with pytest.raises(InvalidInput, match="from 0 to 50"):
        v.mirror_traffic({"green": 51}, live, live)
    with pytest.raises(InvalidInput, match="one deployment"):
        v.mirror_traffic({"green": 10, "red": 5}, live, [*live, "red"])


def test_a_seventh_deployment_is_refused() -> None:
    six = [f"dep{i}" for i in range(6)]
    v.deployment_count(six, "dep0")  # updating an existing one is fine
    with pytest.raises(InvalidInput, match="at most 6"):
        v.deployment_count(six, "dep6")


def test_fastprod_needs_12_vcpu_and_the_fix_is_spelled_out() -> None:
    v.cluster_spec(ClusterSpec(name="myaks"))  # 3 x Standard_D3_v2 = 12 vCPU
    with pytest.raises(InvalidInput) as err:
        v.cluster_spec(ClusterSpec(name="small", agent_count=2))
    assert "at least 12 vCPU" in err.value.rule and "has 8" in err.value.rule
    assert "DevTest" in (err.value.fix or "")
    v.cluster_spec(
        ClusterSpec(
            name="dev", agent_count=1, vm_size="Standard_D2_v2", purpose=ClusterPurpose.DEV_TEST
        )
    )
    with pytest.raises(InvalidInput, match="at least 2 vCPU"):
        v.cluster_spec(
            ClusterSpec(
                name="tiny",
                agent_count=1,
                vm_size="Standard_D1_v2",
                purpose=ClusterPurpose.DEV_TEST,
            )
        )


def test_unknown_vm_size_lists_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        v.cluster_spec(ClusterSpec(name="myaks", vm_size="Standard_Nope"))
    assert "Standard_D3_v2" in (err.value.fix or "")


def test_attach_needs_a_context() -> None:
    with pytest.raises(InvalidInput, match="kube_context"):
        v.cluster_spec(ClusterSpec(name="prod", driver=DriverKind.KUBERNETES))


def _dep(**kw: object) -> DeploymentSpec:
    base: dict[str, object] = dict(
        name="blue",
        endpoint_name="my-endpoint",
        model="azureml:m:1",
        code_configuration=CodeConfiguration("code", "score.py"),
    )
    base.update(kw)
    return DeploymentSpec(**base)  # type: ignore[arg-type]


def test_limits_below_requests_are_refused() -> None:
    v.deployment_spec(_dep())
    bad = Resources(requests=ResourceSet(cpu=1.0, memory_gb=1.0), limits=ResourceSet(cpu=0.5))
    with pytest.raises(InvalidInput) as err:
        v.deployment_spec(_dep(resources=bad))
    assert err.value.field == "resources.limits.cpu"


def test_autoscale_bounds_are_checked() -> None:
    with pytest.raises(InvalidInput, match="min_instances"):
        v.deployment_spec(
            _dep(
                scale_settings=ScaleSettings(
                    type="target_utilization", min_instances=3, max_instances=2
                )
            )
        )


@pytest.mark.parametrize(("text", "cores"), [("100m", 0.1), ("0.5", 0.5), (2, 2.0), ("1500m", 1.5)])
def test_cpu_quantities(text: object, cores: float) -> None:
    assert v.cpu_quantity(text, "cpu") == pytest.approx(cores)


@pytest.mark.parametrize(("text", "gib"), [("512Mi", 0.5), ("1.5Gi", 1.5), ("1024Ki", 1 / 1024)])
def test_memory_quantities(text: str, gib: float) -> None:
    assert v.memory_quantity(text, "memory") == pytest.approx(gib)


def test_bad_quantities_name_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        v.memory_quantity("lots", "resources.requests.memory")
    assert err.value.field == "resources.requests.memory"
