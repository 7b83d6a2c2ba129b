"""Uploads of a model folder and a deployment's code folder, in the order az ml makes them
for a code asset (azure-ai-ml's ``CodeOperations.create_or_update`` ->
``get_storage_info_for_non_registry_asset``): ``POST .../versions/{v}/startPendingUpload``
``{"pendingUploadType": "TemporaryBlobReference"}`` for a SAS to a blob container, the
files' block-blob PUTs through it, then the version's PUT naming the container (no SAS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modeldeck.services.api.domain import CodeConfiguration, DeploymentSpec, ModelSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _order(fake: Any, asset_path: str) -> list[str]:
    """What was asked of ARM and of storage for one asset version, in order."""
    out = []
    for r in fake.requests:
        if r.path.startswith("/blob/"):
            out.append("blob PUT")
        elif r.path.endswith(f"{asset_path}/startPendingUpload"):
            out.append("startPendingUpload")
        elif r.method == "PUT" and r.path.endswith(asset_path):
            out.append("PUT version")
    return [x for i, x in enumerate(out) if i == 0 or x != out[i - 1]]


async def test_a_code_folder_goes_up_through_start_pending_upload(ws: Any, seeded: Any) -> None:
    spec = DeploymentSpec(
        name="teal",
        endpoint_name="my-endpoint",
        model="azureml:sklearn-demo:1",
        code_configuration=CodeConfiguration(
            code=str(EXAMPLES / "blue"), scoring_script="score.py"
        ),
    )
    await (await ws.create_deployment(spec)).wait()
    [start] = seeded.calls("POST", "/codes/modeldeck-", suffix="/startPendingUpload")
    asset = start.path.removesuffix("/startPendingUpload").split("/workspaces/ws-demo", 1)[1]
    assert asset.endswith("/versions/1")
    assert start.body["pendingUploadType"] == "TemporaryBlobReference"
    assert _order(seeded, asset) == ["startPendingUpload", "blob PUT", "PUT version"]
    [put] = seeded.calls("PUT", suffix=asset)
    code_uri = put.body["properties"]["codeUri"]
    assert "sig=" not in code_uri  # the container, not the SAS
    assert {p.rsplit("/", 1)[-1] for p in seeded.blobs} >= {"score.py"}
    assert all(f"{seeded.base_url}/blob/{p}".startswith(code_uri) for p in seeded.blobs)
    # the same folder again: the code version is there, nothing goes up twice
    await (await ws.update_deployment(spec)).wait()
    assert len(seeded.calls("POST", suffix="/startPendingUpload")) == 1


async def test_a_model_folder_goes_up_through_start_pending_upload(ws: Any, fake: Any) -> None:
    model = await ws.create_model(ModelSpec(name="demo", path=str(EXAMPLES / "model")))
    asset = "/models/demo/versions/1"
    assert _order(fake, asset) == ["startPendingUpload", "blob PUT", "PUT version"]
    [put] = fake.calls("PUT", suffix=asset)
    assert put.body["properties"]["modelUri"] == model.path and "sig=" not in model.path
