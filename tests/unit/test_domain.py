"""Domain types round-trip through the wire form with az ml's field names."""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from typing import Any

import pytest
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


def _sample(tp: Any) -> Any:
    """A value of type ``tp``, none of them a field's default (to round-trip)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in typing.get_args(tp) if a is not type(None)))
    if origin is dict:
        return {"k": _sample(typing.get_args(tp)[1])}
    if origin in (list, tuple):
        items = [_sample(typing.get_args(tp)[0])]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _sample(hints[f.name]) for f in dataclasses.fields(tp)})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return list(tp)[-1]
    return {str: "x", int: 2, float: 2.5, bool: True, typing.Any: "any"}[tp]


def test_every_domain_type_is_reached_through_domain_and_round_trips() -> None:
    """The types live in groups imported on first use (cold start); each is still
    ``domain.X`` and its annotations resolve, so the wire form reads back equal."""
    from modeldeck.services.api import assets, clusters, deployments, operations, streams

    found = [
        value
        for module in (domain, assets, clusters, deployments, operations, streams)
        for value in vars(module).values()
        if dataclasses.is_dataclass(value) and value.__module__ == module.__name__
    ]
    assert len(found) == 27
    for cls in found:
        assert getattr(domain, cls.__name__) is cls
        if cls.__name__ == "InvokeResult":  # made by the client from a response, never read back
            continue
        value = _sample(cls)
        assert domain.from_dict(cls, json.loads(json.dumps(domain.to_dict(value)))) == value
    history = _sample(domain.MetricsHistory)
    assert domain.MetricsHistory.from_wire(history.to_wire()) == history
    with pytest.raises(ImportError):
        exec("from modeldeck.services.api.domain import NoSuchType", {})
