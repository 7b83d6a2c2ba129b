"""The fake's own answers conform to the REST spec, so the client is tested against ARM's shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
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
                environment="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference",
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
    # the code folder was uploaded as a code version, the image registered as an environment
    assert seeded.codes and seeded.environments
    seeded.add_code("registered-code")
    for key, code in seeded.codes.items():
        assert spec.errors("mfe", "CodeVersionResource", code) == []
        assert code["id"] == f"{seeded.ws_path}/codes/{key.replace('/', '/versions/')}"
    for key, env in seeded.environments.items():
        assert spec.errors("mfe", "EnvironmentVersionResource", env) == []
        assert env["id"] == f"{seeded.ws_path}/environments/{key.replace('/', '/versions/')}"
        assert env["properties"]["provisioningState"] == "Succeeded"


@pytest.mark.parametrize("asset", ["models", "codes"])
async def test_start_pending_upload_answers_as_the_spec_says(seeded: Any, asset: str) -> None:
    """``startPendingUpload`` (az ml's code upload: azure-ai-ml's
    ``get_storage_info_for_non_registry_asset`` sends ``{"pendingUploadType":
    "TemporaryBlobReference"}``): a SAS to a blob container, in PendingUploadResponseDto."""
    url = f"{seeded.base_url}{seeded.ws_path}/{asset}/x/versions/1/startPendingUpload"
    async with httpx.AsyncClient() as http:
        r = await http.post(
            url,
            params={"api-version": "2024-10-01"},
            json={"pendingUploadType": "TemporaryBlobReference"},
            headers={"Authorization": "Bearer static-token-1"},
        )
        assert r.status_code == 200
        answer = r.json()
        assert arm_spec.errors("mfe", "PendingUploadResponseDto", answer) == []
        ref = answer["blobReferenceForConsumption"]
        assert ref["credential"]["credentialType"] == "SAS"
        assert ref["credential"]["sasUri"].startswith(ref["blobUri"] + "?")
        bad = await http.post(
            url,
            params={"api-version": "2024-10-01"},
            json={"pendingUploadType": "Permanent"},
            headers={"Authorization": "Bearer static-token-1"},
        )
        assert bad.status_code == 400  # not in the spec's PendingUploadType
    seeded.schema_errors.clear()  # the refused body above is this test's own


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
