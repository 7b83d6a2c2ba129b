"""The Azure ML back end prints what az ml prints (issue 12): the real console script,
signed in through a fake ``az``, against the fake ARM (test_cli_e2e.py's harness); each
object's keys and types against azure-ai-ml's schemas and the ARM spec
(tests/support/azml_schema.py), the ARM's own id, identity and properties, ISO times,
integer token times, nothing on stdout for --no-wait, a not-found in az's shape."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.azureml.test_cli_e2e import AzCli, _profile
from tests.support import azml_schema as az


@pytest.fixture
def cli(tmp_path: Path, seeded: Any) -> AzCli:
    cli = AzCli(tmp_path, token="static-token-1")
    cli.write_config(_profile(seeded))
    return cli


async def _json(cli: AzCli, *argv: str) -> Any:
    code, out, err = await cli.run(*argv, "-o", "json")
    assert code == 0, err
    return json.loads(out)


async def test_endpoint_and_deployment_as_az_prints_them(cli: AzCli, seeded: Any) -> None:
    res = seeded.endpoints["my-endpoint"]
    ep = await _json(cli, "online-endpoint", "show", "-n", "my-endpoint")
    assert az.endpoint_problems(ep) == [], ep
    # ARM's own: id, location, identity (az's words), the service's properties
    assert ep["id"] == res["id"] and ep["resourceGroup"] == seeded.rg
    assert ep["location"] == res["location"]
    assert ep["identity"] == {
        "type": "system_assigned",
        "principal_id": res["identity"]["principalId"],
        "tenant_id": res["identity"]["tenantId"],
    }
    assert ep["properties"] == res["properties"]["properties"]
    assert ep["properties"]["azureml.onlineendpointid"] == res["id"].lower()
    assert "created_at" not in ep
    for query in ("id", "identity.principal_id", 'properties."azureml.onlineendpointid"'):
        code, out, err = await cli.run(
            "online-endpoint", "show", "-n", "my-endpoint", "--query", query, "-o", "tsv"
        )
        assert code == 0 and out.strip(), (query, err)
    listed = await _json(cli, "online-endpoint", "list")
    assert [e["id"] for e in listed] == [res["id"]]
    # modeldeck's own key beside az's (issue 14): the rollout, or why the back end cannot
    # tell; the show never fails for it
    assert ep["modeldeck"].get("rollout") is None or ep["modeldeck"]["rollout"]["endpoint"]
    assert set(ep["modeldeck"]) <= {"rollout", "rollout_error"}

    dep = await _json(cli, "online-deployment", "show", "-e", "my-endpoint", "-n", "blue")
    assert az.deployment_problems(dep) == [], dep
    assert dep["id"] == seeded.deployments["my-endpoint"]["blue"]["id"]
    assert dep["type"] == "kubernetes"  # endpointComputeType Kubernetes, in az's words
    sd = seeded.deployments["my-endpoint"]["blue"]["systemData"]
    created = datetime.fromisoformat(dep["creation_context"]["created_at"])
    assert created.timestamp() == pytest.approx(
        datetime.fromisoformat(sd["createdAt"][:26] + "+00:00").timestamp(), abs=1e-3
    )


async def test_assets_computes_and_tokens_as_az_prints_them(cli: AzCli, seeded: Any) -> None:
    model = await _json(cli, "model", "show", "-n", "sklearn-demo", "--version", "2")
    assert az.problems(model, az.MODEL, az.MODEL_REQUIRED) == [], model
    assert model["id"] == f"{seeded.ws_path}/models/sklearn-demo/versions/2"
    assert model["version"] == "2"

    compute = await _json(cli, "compute", "show", "-n", "myaks")
    assert az.problems(compute, az.COMPUTE, az.COMPUTE_REQUIRED) == [], compute
    assert compute["id"] == f"{seeded.ws_path}/computes/myaks"
    assert compute["location"] == seeded.location

    seeded.add_endpoint("tok-ep", "myaks", auth="AMLToken")
    token = await _json(cli, "online-endpoint", "get-credentials", "-n", "tok-ep")
    spec = az.arm_object("EndpointAuthToken")  # int64 times, as az prints them
    assert set(token) == set(spec) and az.problems(token, spec) == [], token


async def test_no_wait_prints_nothing_and_not_found_is_az_shaped(cli: AzCli, seeded: Any) -> None:
    code, out, err = await cli.run(
        "online-endpoint", "create", "-n", "new-ep", "--set", "compute=myaks", "--no-wait"
    )
    assert code == 0 and out == "", err
    assert "online-endpoint show -n new-ep" in err
    code, out, err = await cli.run("online-endpoint", "show", "-n", "nope")
    assert code == 3 and out == ""
    # azure-core's rendering of ARM's OData error (ODataV4Format), as az prints a 404
    said = "The Resource 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/nope' was not found."
    assert err.splitlines() == [
        f"ERROR: (ResourceNotFound) {said}",
        "Code: ResourceNotFound",
        f"Message: {said}",
        "  fix: list what exists with: modeldeck online-endpoint list",
    ]
