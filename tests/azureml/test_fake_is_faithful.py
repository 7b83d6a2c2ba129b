"""The fake's own answers conform to the REST spec, so the client is tested against ARM's shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modeldeck.services.api.domain import CodeConfiguration, DeploymentSpec, EndpointSpec

from tests.support import arm_spec


async def test_resources_the_fake_serves_match_the_schemas(ws: Any, seeded: Any) -> None:
    spec = arm_spec
    await (await ws.create_endpoint(EndpointSpec(name="fresh", compute="myaks"))).wait()
    examples = Path(__file__).resolve().parents[2] / "examples"
    await (
        await ws.create_deployment(
            DeploymentSpec(
                name="blue",
                endpoint_name="fresh",
                model="azureml:sklearn-demo:1",
                code_configuration=CodeConfiguration(
                    code=str(examples / "blue"), scoring_script="score.py"
                ),
            )
        )
    ).wait()
    for ep in seeded.endpoints.values():
        assert spec.errors("mfe", "OnlineEndpointTrackedResource", ep) == []
    for deps in seeded.deployments.values():
        for dep in deps.values():
            assert spec.errors("mfe", "OnlineDeploymentTrackedResource", dep) == []
    for versions in seeded.models.values():
        for mv in versions.values():
            assert spec.errors("mfe", "ModelVersionResource", mv) == []
    for compute in seeded.computes.values():
        assert spec.errors("rp", "ComputeResource", compute) == []


def test_the_schemas_reject_what_arm_rejects() -> None:
    spec = arm_spec
    bad = {
        "location": "westeurope",
        "properties": {
            "endpointComputeType": "Kubernetes",
            "requestSettings": {"requestTimeout": "5 seconds"},
            "scaleSettings": {"scaleType": "Default", "minInstances": 2},
            "instanceCount": 3,
        },
    }
    errors = " ".join(spec.errors("mfe", "OnlineDeploymentTrackedResource", bad))
    assert "instanceCount" in errors  # not a deployment property: sku.capacity is
    assert "requestSettings" in errors and "scaleSettings" in errors
    assert (
        spec.errors("mfe", "OnlineEndpointTrackedResource", {"location": "w", "properties": {}})
        != []
    )
