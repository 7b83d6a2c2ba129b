"""The pure REST <-> domain mapping: durations, quantities, bodies, log tails."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeck.services.api.domain import AuthMode, CodeConfiguration, DeploymentSpec, EndpointSpec
from modeldeck.services.api.validation import parse_model_ref
from modeldeck.services.azureml import mapping


@pytest.mark.parametrize(
    ("seconds", "iso"),
    [(5, "PT5S"), (0.5, "PT0.5S"), (1.5, "PT1.5S"), (120, "PT2M"), (90, "PT90S"), (0, "PT0S")],
)
def test_iso_durations_round_trip(seconds: float, iso: str) -> None:
    assert mapping.seconds_to_iso(seconds) == iso
    assert mapping.iso_to_seconds(iso) == seconds


def test_iso_parses_what_arm_writes() -> None:
    assert mapping.iso_to_seconds("PT1M30S") == 90
    assert mapping.iso_to_seconds("P1DT1H") == 90000
    assert mapping.iso_to_ms("PT0.5S", 7) == 500
    assert mapping.iso_to_ms(None, 7) == 7
    assert mapping.iso_to_seconds("garbage", 3) == 3


@pytest.mark.parametrize(("cores", "text"), [(0.5, "0.5"), (2, "2"), (0.25, "250m"), (0.1, "0.1")])
def test_cpu_text(cores: float, text: str) -> None:
    assert mapping.cpu_text(cores) == text


def test_memory_text() -> None:
    assert mapping.memory_text(1) == "1Gi"
    assert mapping.memory_text(0.5) == "512Mi"
    assert mapping.memory_text(1.5) == "1536Mi"


def test_model_refs() -> None:
    arm = "/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/w/models/m/versions/3"
    assert mapping.model_ref(arm) == "azureml:m:3"
    assert parse_model_ref("azureml:m:3") == ("m", "3")
    assert parse_model_ref("m@latest") == ("m", None)


def test_deployment_body_round_trips_through_the_domain() -> None:
    spec = DeploymentSpec(
        name="blue",
        endpoint_name="ep",
        model="azureml:m:1",
        code_configuration=CodeConfiguration(code="/x", scoring_script="score.py"),
        environment_variables={"A": "1"},
    )
    body = mapping.deployment_body(
        spec,
        model_id="/s/models/m/versions/1",
        code_id="/s/codes/c/versions/1",
        environment_id="azureml:env:1",
        location="westeurope",
    )
    res: dict[str, Any] = {"name": "blue", **body}
    back = mapping.deployment_to_domain("ep", res, traffic={"blue": 40})
    assert back.spec.model == "azureml:m:1"
    assert back.spec.request_settings == spec.request_settings
    assert back.spec.liveness_probe == spec.liveness_probe
    assert back.spec.resources == spec.resources
    assert back.spec.environment_variables == {"A": "1"}
    assert back.traffic == 40 and back.spec.tags == {}


def test_endpoint_update_body_always_carries_both_maps() -> None:
    current = {
        "location": "w",
        "kind": "K8s",
        "identity": {"type": "SystemAssigned", "principalId": "p"},
        "properties": {
            "authMode": "Key",
            "scoringUri": "https://x",
            "provisioningState": "Succeeded",
        },
    }
    body = mapping.endpoint_update_body(
        current, traffic={"a": 100}, mirror_traffic={}, description=None, tags={}
    )
    assert body["properties"]["traffic"] == {"a": 100}
    assert body["properties"]["mirrorTraffic"] == {}
    assert "scoringUri" not in body["properties"] and "provisioningState" not in body["properties"]
    assert body["identity"] == {"type": "SystemAssigned"}


def test_endpoint_create_body_maps_auth_modes() -> None:
    body = mapping.endpoint_create_body(
        EndpointSpec(name="e", compute="c", auth_mode=AuthMode.AML_TOKEN),
        compute_id="/c",
        location="w",
    )
    assert body["properties"]["authMode"] == "AMLToken"


def test_new_tail_finds_the_overlap() -> None:
    assert mapping.new_tail(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert mapping.new_tail([], ["a"]) == ["a"]
    assert mapping.new_tail(["a", "b"], ["a", "b"]) == []
    assert mapping.new_tail(["x"], ["y", "z"]) == ["y", "z"]  # rotated: all new
