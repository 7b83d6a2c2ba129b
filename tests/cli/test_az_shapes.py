"""The local workspace prints what az ml prints: each object's keys and value types against
azure-ai-ml's schemas and the ARM spec (tests/support/azml_schema.py), ARM ids with the
documented placeholders, ISO 8601 times, the fields az scripts --query really there,
nothing on stdout for --no-wait, and a not-found in az's shape (issue 12)."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
from modeldeck.services import armids

from tests.cli.conftest import Cli
from tests.support import azml_schema as az

WS_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/modeldeck-local"
    "/providers/Microsoft.MachineLearningServices/workspaces/local"
)


def test_show_prints_az_keys_and_types(cli: Cli) -> None:
    cli("cluster create --name myaks -o none")
    cli("model create --name sklearn-demo --path ./model -o none")
    cli("online-endpoint create -f endpoint.yml -o none")
    cli("online-deployment create -f blue.yml --all-traffic -o none")

    ep = cli("online-endpoint show -n my-endpoint").json()
    assert az.endpoint_problems(ep) == [], ep
    # the documented placeholders of the local workspace (services/armids.py)
    assert ep["id"] == f"{WS_ID}/onlineEndpoints/my-endpoint"
    assert ep["resourceGroup"] == armids.LOCAL_RESOURCE_GROUP
    assert ep["properties"]["azureml.onlineendpointid"] == ep["id"].lower()
    assert ep["identity"]["principal_id"] == armids.placeholder_uuid(ep["id"])
    # the service's own time format in properties; az has no created_at float any more
    created = ep["properties"]["createdAt"]
    assert datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%f%z").tzinfo is not None
    assert "created_at" not in ep

    # what the az ml scripts read with --query -o tsv: never empty
    for query in (
        "id",
        "identity.principal_id",
        "openapi_uri",
        'properties."azureml.onlineendpointid"',
    ):
        out = cli(f"online-endpoint show -n my-endpoint --query '{query}' -o tsv").out.strip()
        assert out, query
    # an unknown path: nothing, exit 0 (JMESPath, as az)
    for fmt in ("tsv", "json", "yaml"):
        r = cli(f"online-endpoint show -n my-endpoint --query no.such.key -o {fmt}")
        assert r.out == "", fmt

    # openapi_uri serves the deployment's swagger behind the key, as deploy-moe-openapi.sh
    # curls it (Authorization: Bearer $KEY)
    key = cli("online-endpoint get-credentials -n my-endpoint --query primaryKey -o tsv").out
    spec = httpx.get(
        ep["openapi_uri"], headers={"Authorization": f"Bearer {key.strip()}"}, timeout=30.0
    )
    assert spec.status_code == 200 and spec.json()["swagger"] == "2.0"
    assert spec.headers["azureml-model-deployment"] == "blue"

    dep = cli("online-deployment show -e my-endpoint -n blue").json()
    assert az.deployment_problems(dep) == [], dep
    assert dep["scale_settings"] == {"type": "default"}
    assert dep["id"] == f"{WS_ID}/onlineEndpoints/my-endpoint/deployments/blue"
    assert dep["type"] == "kubernetes"  # an endpoint on a named cluster (kind K8s)
    assert "created_at" not in dep and "updated_at" not in dep
    [listed] = cli("online-deployment list -e my-endpoint").json()
    assert listed["id"] == dep["id"]
    q = "online-deployment show -e my-endpoint -n blue --query id -o tsv"
    assert cli(q).out.strip() == dep["id"]

    model = cli("model show -n sklearn-demo --version 1").json()
    assert az.problems(model, az.MODEL, az.MODEL_REQUIRED) == [], model
    assert az.problems(model["creation_context"], az.CREATION_CONTEXT) == []
    assert model["id"] == f"{WS_ID}/models/sklearn-demo/versions/1" and model["version"] == "1"

    env = cli("environment create --name env-one --image python:3.11").json()
    assert az.problems(env, az.ENVIRONMENT, az.ENVIRONMENT_REQUIRED) == [], env
    assert env["id"] == f"{WS_ID}/environments/env-one/versions/1"

    compute = cli("compute show -n myaks").json()
    assert az.problems(compute, az.COMPUTE, az.COMPUTE_REQUIRED) == [], compute
    assert compute["id"] == f"{WS_ID}/computes/myaks"
    assert datetime.fromisoformat(compute["created_on"]).tzinfo is not None


def test_token_no_wait_and_not_found_as_az(cli: Cli) -> None:
    cli("cluster create --name myaks -o none")
    # --no-wait: the request is sent and nothing printed (az returns no entity)
    r = cli("online-endpoint create -n tok-ep --set compute=myaks --auth-mode aml_token --no-wait")
    assert r.out == "" and "online-endpoint show -n tok-ep" in r.err
    token = cli("online-endpoint get-credentials -n tok-ep").json()
    # EndpointAuthToken's times are int64 epoch seconds in the REST spec, and az prints them so
    assert set(token) == set(az.arm_object("EndpointAuthToken"))
    assert az.problems(token, az.arm_object("EndpointAuthToken")) == [], token
    assert (
        cli("online-endpoint get-credentials -n tok-ep --query expiryTimeUtc -o tsv")
        .out.strip()
        .isdigit()
    )
    assert cli("online-endpoint delete -n tok-ep --yes --no-wait").out == ""

    r = cli("online-endpoint show -n nope", ok=False)
    assert r.code == 3 and r.out == ""
    # azure-core's rendering of ARM's OData error, as az prints a 404; then our fix
    lines = r.err.splitlines()
    assert lines[0] == "ERROR: (ResourceNotFound) endpoint 'nope' not found"
    assert lines[1:3] == ["Code: ResourceNotFound", "Message: endpoint 'nope' not found"]
    assert lines[3] == "  fix: list what exists with: modeldeck online-endpoint list"


def _settled(cli: Cli, command: str) -> str:
    """Poll a --no-wait operation's object until it leaves its transitional state."""
    for _ in range(600):
        state = cli(f"{command} --query provisioning_state -o tsv").out.strip()
        if state not in ("Creating", "Updating", "Deleting"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"{command}: still {state}")


def test_no_wait_prints_nothing_on_every_create_update_and_delete(cli: Cli) -> None:
    """az returns no entity for --no-wait (azure-cli's sdk_no_wait returns the poller, which
    it does not print): stdout stays empty on the deployment's create, update and delete and on
    the endpoint's update too, and each change is made."""
    cli("cluster create --name myaks -o none")
    cli("model create --name sklearn-demo --path ./model -o none")
    cli("online-endpoint create -f endpoint.yml -o none")
    dep = "online-deployment show -e my-endpoint -n blue"
    for command in (
        "online-deployment create -f blue.yml --all-traffic --no-wait",
        "online-deployment update -e my-endpoint -n blue --set instance_count=2 --no-wait",
    ):
        r = cli(command)
        assert r.out == "" and "modeldeck online-deployment show" in r.err, r
        assert _settled(cli, dep) == "Succeeded"
    assert cli(f"{dep} --query instance_count -o tsv").out.strip() == "2"
    r = cli("online-endpoint update -n my-endpoint --set tags.team=ml --no-wait")
    assert r.out == "", r
    assert _settled(cli, "online-endpoint show -n my-endpoint") == "Succeeded"
    assert cli("online-endpoint show -n my-endpoint --query tags.team -o tsv").out.strip() == "ml"
    cli('online-endpoint update -n my-endpoint --traffic "blue=0" -o none')
    assert cli("online-deployment delete -e my-endpoint -n blue --yes --no-wait").out == ""
    for _ in range(600):
        if cli(dep, ok=False).code == 3:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the deployment was not deleted")
