"""Issue 16, points 1 and 2: the Azure ML back end sends what the YAML says.

The YAML keys only some back ends have (``public_network_access``, ``instance_type``,
``app_insights_enabled``) reach ARM as the REST spec names them (mfe.json 2024-10-01:
``OnlineEndpoint.publicNetworkAccess``, ``OnlineDeployment.instanceType`` and
``appInsightsEnabled``), with no "not used" warning; remote model paths and registered code
(``azureml://datastores/...``, ``azureml:NAME:VERSION``) are registered as given, as
``az ml`` does, instead of being refused by the loader. The fake ARM checks every body
against the spec (``ws`` fixture: no schema error).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from modeldeck.services import apply
from modeldeck.services.specs.deployment import load_deployment
from modeldeck.services.specs.model import load_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATASTORE_MODEL = "azureml://datastores/workspaceblobstore/paths/remote-model/"


def work(tmp_path: Path) -> Path:
    """A copy of examples/ (the YAML files, their model and code folders)."""
    dest = tmp_path / "work"
    if not dest.exists():
        shutil.copytree(EXAMPLES, dest)
    return dest


def example(tmp_path: Path, source: str, old: str, new: str, extra: str = "") -> Path:
    """``NEW.yml``: the example ``source`` named ``new`` instead of ``old``, ``extra`` added."""
    folder = work(tmp_path)
    path = folder / f"{new}.yml"
    path.write_text((folder / source).read_text().replace(f"name: {old}", f"name: {new}") + extra)
    return path


async def test_private_endpoint_reaches_arm_disabled_without_a_warning(
    ws: Any, seeded: Any, tmp_path: Path
) -> None:
    path = example(tmp_path, "endpoint.yml", "my-endpoint", "private-ep")
    text = path.read_text()
    path.write_text(text + "public_network_access: disabled\n")
    warnings: list[str] = []
    await (await apply.create_endpoint_from_file(ws, path, warn=warnings.append)).wait()
    (put,) = seeded.calls("PUT", suffix="/onlineEndpoints/private-ep")
    assert put.body["properties"]["publicNetworkAccess"] == "Disabled"
    assert warnings == []  # was: "is not used: the gateway listens on loopback", and public
    shown = await ws.get_endpoint("private-ep")
    assert shown.public_network_access == "disabled"
    # an update that does not name it keeps it; one that does changes it
    await (await apply.update_endpoint_from(ws, "private-ep", overrides=["tags.a=b"])).wait()
    last = seeded.calls("PUT", suffix="/onlineEndpoints/private-ep")[-1]
    assert last.body["properties"]["publicNetworkAccess"] == "Disabled"
    path.write_text(text + "public_network_access: enabled\n")
    await (await apply.update_endpoint_from(ws, "private-ep", path=path)).wait()
    last = seeded.calls("PUT", suffix="/onlineEndpoints/private-ep")[-1]
    assert last.body["properties"]["publicNetworkAccess"] == "Enabled"
    assert (await ws.get_endpoint("private-ep")).public_network_access == "enabled"


async def test_endpoint_without_the_key_is_created_with_arms_default(
    ws: Any, seeded: Any, tmp_path: Path
) -> None:
    path = example(tmp_path, "endpoint.yml", "my-endpoint", "plain-ep")
    await (await apply.create_endpoint_from_file(ws, path)).wait()
    (put,) = seeded.calls("PUT", suffix="/onlineEndpoints/plain-ep")
    assert "publicNetworkAccess" not in put.body["properties"]
    assert (await ws.get_endpoint("plain-ep")).public_network_access == "enabled"


async def test_instance_type_and_app_insights_are_sent_as_in_the_yaml(
    ws: Any, seeded: Any, tmp_path: Path
) -> None:
    extra = "instance_type: gpuinstancetype\napp_insights_enabled: true\n"
    path = example(tmp_path, "blue.yml", "blue", "sized", extra)
    warnings: list[str] = []
    await (await apply.create_deployment_from_file(ws, path, warn=warnings.append)).wait()
    (put,) = seeded.calls("PUT", suffix="/deployments/sized")
    props = put.body["properties"]
    assert props["instanceType"] == "gpuinstancetype"
    assert props["appInsightsEnabled"] is True  # was sent as false
    assert not [w for w in warnings if "instance_type" in w or "app_insights" in w]
    shown = await ws.get_deployment("my-endpoint", "sized")
    assert (shown.spec.instance_type, shown.spec.app_insights_enabled) == ("gpuinstancetype", True)
    # update --set of another key keeps both (the full spec is sent)
    await (
        await apply.update_deployment_from(ws, "my-endpoint", "sized", None, ["instance_count=2"])
    ).wait()
    props = seeded.calls("PUT", suffix="/deployments/sized")[-1].body["properties"]
    assert (props["instanceType"], props["appInsightsEnabled"]) == ("gpuinstancetype", True)


async def test_deployment_without_the_keys_sends_arms_defaults(
    ws: Any, seeded: Any, tmp_path: Path
) -> None:
    path = example(tmp_path, "blue.yml", "blue", "plain")
    await (await apply.create_deployment_from_file(ws, path)).wait()
    props = seeded.calls("PUT", suffix="/deployments/plain")[0].body["properties"]
    assert "instanceType" not in props  # the compute's default instance type
    assert props["appInsightsEnabled"] is False


async def test_model_create_registers_a_datastore_path_as_given(ws: Any, seeded: Any) -> None:
    spec = load_model(None, name="remote-model", model_path=DATASTORE_MODEL)
    model = await apply.create_model(ws, spec)
    assert model.ref == "azureml:remote-model:1"
    (put,) = seeded.calls("PUT", suffix="/models/remote-model/versions/1")
    assert put.body["properties"]["modelUri"] == DATASTORE_MODEL
    assert seeded.calls("POST", "startPendingUpload") == []  # nothing uploaded


async def test_model_create_from_a_registered_version_points_at_its_files(
    ws: Any, seeded: Any
) -> None:
    spec = load_model(None, name="copy-of-demo", model_path="azureml:sklearn-demo:2")
    await apply.create_model(ws, spec)
    (put,) = seeded.calls("PUT", suffix="/models/copy-of-demo/versions/1")
    source = seeded.models["sklearn-demo"]["2"]["properties"]["modelUri"]
    assert put.body["properties"]["modelUri"] == source
    assert seeded.calls("POST", "startPendingUpload") == []


async def test_deployment_with_a_remote_model_and_registered_code(
    ws: Any, seeded: Any, tmp_path: Path
) -> None:
    seeded.add_code("score-code", "1")
    path = example(tmp_path, "green.yml", "green", "teal")
    path.write_text(
        path.read_text()
        .replace("path: ./model", f"path: {DATASTORE_MODEL}")
        .replace("code: ./green", "code: azureml:score-code:1")
    )
    loaded = load_deployment(path)
    assert loaded.model_to_register is not None
    await (await apply.create_deployment(ws, loaded)).wait()
    model_put = seeded.calls("PUT", suffix="/models/my-endpoint-teal/versions/1")[0]
    assert model_put.body["properties"]["modelUri"] == DATASTORE_MODEL
    props = seeded.calls("PUT", suffix="/deployments/teal")[-1].body["properties"]
    assert props["codeConfiguration"]["codeId"] == f"{seeded.ws_path}/codes/score-code/versions/1"
    assert props["model"] == f"{seeded.ws_path}/models/my-endpoint-teal/versions/1"
    assert seeded.calls("POST", "startPendingUpload") == []


async def test_code_on_a_datastore_is_registered_once_as_a_code_version(
    ws: Any, seeded: Any, tmp_path: Path
) -> None:
    uri = "azureml://datastores/workspaceblobstore/paths/src/"
    for name in ("onstore", "onstore2"):
        path = example(tmp_path, "blue.yml", "blue", name)
        path.write_text(path.read_text().replace("code: ./blue", f"code: {uri}"))
        await (await apply.create_deployment_from_file(ws, path)).wait()
    (code_put,) = seeded.calls("PUT", "/codes/modeldeck-")  # once: named by the URI's hash
    assert code_put.body["properties"]["codeUri"] == uri
    code_id = f"{seeded.ws_path}{code_put.path[code_put.path.index('/codes/') :]}"
    for name in ("onstore", "onstore2"):
        props = seeded.calls("PUT", suffix=f"/deployments/{name}")[0].body["properties"]
        assert props["codeConfiguration"]["codeId"] == code_id
    assert seeded.calls("POST", "startPendingUpload") == []
