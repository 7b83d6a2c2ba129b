"""Issue 12: an endpoint without ``compute`` is a managed online endpoint on Azure ML, as az
ml makes one (azure-ai-ml ``OnlineEndpoint._load``: no ``compute`` -> ``ManagedOnlineEndpoint``,
whose REST body has no ``compute``; its deployments are ``ManagedOnlineDeployment``s,
``endpointComputeType: Managed``, sized by ``instanceType``). Was refused by the loader:
``invalid compute '': is required``. The fake ARM checks every body against the REST spec.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from modeldeck.services import apply

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: cli/endpoints/online/managed/sample/endpoint.yml of Azure/azureml-examples, as it is
MANAGED_ENDPOINT = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json
name: my-endpoint
auth_mode: key
"""


async def test_an_endpoint_without_compute_is_a_managed_endpoint(
    ws: Any, seeded: Any, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    shutil.copytree(EXAMPLES, work)
    (work / "managed.yml").write_text(MANAGED_ENDPOINT)
    handle = await apply.create_endpoint_from_file(ws, work / "managed.yml", name="managed-ep")
    await handle.wait()
    (put,) = seeded.calls("PUT", suffix="/onlineEndpoints/managed-ep")
    assert "compute" not in put.body["properties"] and "kind" not in put.body
    assert not seeded.calls("GET", suffix="/computes/")  # no compute to look up
    shown = await ws.get_endpoint("managed-ep")
    assert (shown.compute, shown.kind, shown.cluster) == ("", "Managed", "")

    blue = work / "managed-blue.yml"
    blue.write_text(
        (work / "blue.yml").read_text().replace("endpoint_name: my-endpoint", "")
        + "instance_type: Standard_DS3_v2\n"
    )
    warnings: list[str] = []
    handle = await apply.create_deployment_from_file(
        ws, blue, endpoint_name="managed-ep", warn=warnings.append
    )
    await handle.wait()
    (put,) = seeded.calls("PUT", suffix="/onlineEndpoints/managed-ep/deployments/blue")
    props = put.body["properties"]
    assert (props["endpointComputeType"], put.body["kind"]) == ("Managed", "Managed")
    assert props["instanceType"] == "Standard_DS3_v2"
    assert "containerResourceRequirements" not in props  # not in ManagedOnlineDeployment
    assert not [w for w in warnings if "instance_type" in w]
    shown_dep = await ws.get_deployment("managed-ep", "blue")
    assert shown_dep.spec.instance_type == "Standard_DS3_v2"
    # an endpoint on a compute stays a Kubernetes one
    assert (await ws.get_endpoint("my-endpoint")).kind == "K8s"
