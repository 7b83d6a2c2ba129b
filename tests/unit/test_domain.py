"""Domain types round-trip through the wire form with az ml's field names."""

from __future__ import annotations

from modeldeck.services.api import domain
from modeldeck.services.api.domain import (
    AuthMode,
    CodeConfiguration,
    Deployment,
    DeploymentSpec,
    Endpoint,
    ProvisioningState,
)
from modeldeck.services.api.errors import (
    CapacityExceeded,
    InvalidInput,
    NotFound,
    error_from_dict,
)


def test_endpoint_prints_az_ml_field_names_and_round_trips() -> None:
    ep = Endpoint(
        name="my-endpoint",
        compute="myaks",
        auth_mode=AuthMode.KEY,
        scoring_uri="http://127.0.0.1:1/api/v1/endpoint/my-endpoint/score",
        traffic={"blue": 90, "green": 10},
        mirror_traffic={},
        provisioning_state=ProvisioningState.SUCCEEDED,
    )
    data = domain.to_dict(ep)
    assert data["auth_mode"] == "key" and data["provisioning_state"] == "Succeeded"
    assert data["scoring_uri"].endswith("/score") and data["traffic"] == {"blue": 90, "green": 10}
    assert domain.from_dict(Endpoint, data) == ep


def test_deployment_flattens_its_spec_like_az_ml() -> None:
    spec = DeploymentSpec(
        name="blue",
        endpoint_name="ep1",
        model="azureml:m:1",
        code_configuration=CodeConfiguration("code", "score.py"),
        instance_count=2,
    )
    dep = Deployment(
        spec=spec,
        provisioning_state=ProvisioningState.UPDATING,
        ready_replicas=1,
        desired_replicas=2,
    )
    data = domain.to_dict(dep)
    assert data["instance_count"] == 2 and data["ready_replicas"] == 1 and "spec" not in data
    assert domain.from_dict(Deployment, data) == dep


def test_enums_parse_case_insensitively() -> None:
    assert AuthMode.parse("Key") is AuthMode.KEY
    assert AuthMode.parse("AML_Token") is AuthMode.AML_TOKEN


def test_typed_errors_survive_the_wire() -> None:
    for err in (
        NotFound("endpoint", "ep1"),
        InvalidInput("traffic", {"a": 1}, "must add up to 100", "fix it"),
        CapacityExceeded("needs 8 vCPU, 2 free of 12", fix="scale the cluster"),
    ):
        back = error_from_dict(err.to_dict())
        assert type(back) is type(err)
        assert str(back) == str(err)
        assert back.exit_code == err.exit_code


def test_an_error_without_a_value_reads_without_none() -> None:
    from modeldeck.services.api.errors import InvalidInput

    assert InvalidInput("update", None, "nothing to change").message == (
        "invalid update: nothing to change"
    )
    assert InvalidInput("name", "b_x", "breaks the rule").message == (
        "invalid name 'b_x': breaks the rule"
    )
