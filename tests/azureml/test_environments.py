"""Environments on an Azure ML workspace (the fake ARM): an inline conda file goes to Azure as
an anonymous environment with ``condaFile``, as ``az ml`` sends it; registered environments
are not available through modeldeck there yet (a clear error)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services import apply
from modeldeck.services.api.domain import Environment
from modeldeck.services.api.errors import BackendError, InvalidInput
from modeldeck.services.specs.deployment import load_deployment
from modeldeck.services.specs.model import load_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _yaml(tmp_path: Path, environment: str) -> Path:
    (tmp_path / "conda.yml").write_text(
        "dependencies:\n  - python=3.11\n  - pip:\n    - six==1.16.0\n"
    )
    path = tmp_path / "purple.yml"
    path.write_text(
        "name: purple\nendpoint_name: my-endpoint\nmodel: azureml:sklearn-demo:2\n"
        f"code_configuration: {{code: {EXAMPLES / 'blue'}, scoring_script: score.py}}\n"
        + environment
    )
    return path


async def test_an_inline_conda_file_becomes_the_environments_conda_file(
    ws: Any, seeded: Any, tmp_path: Path
) -> None:
    loaded = load_deployment(_yaml(tmp_path, "environment:\n  conda_file: conda.yml\n"))
    await (await ws.create_deployment(loaded.spec)).wait()
    env_id = seeded.calls("PUT", "/deployments/purple")[0].body["properties"]["environmentId"]
    assert "/environments/modeldeck-" in env_id
    (put,) = [c for c in seeded.calls("PUT", "/environments/") if c.path in env_id]
    props = put.body["properties"]
    assert props["image"].startswith("mcr.microsoft.com/azureml/")  # Azure needs a base image
    assert json.loads(props["condaFile"])["dependencies"][-1] == {"pip": ["six==1.16.0"]}


async def test_registered_environments_are_not_there_yet(ws: Any) -> None:
    for call in (
        ws.list_environments(),
        ws.get_environment("env", "1"),
        ws.create_environment(Environment(name="env", image="x")),
        ws.archive_environment("env", "1"),
        ws.prune_environments(),
    ):
        with pytest.raises(BackendError) as info:
            await call
        assert "not available on this workspace yet" in info.value.message
        assert "az ml environment" in (info.value.fix or "")


async def test_what_a_local_pool_cannot_build_is_left_to_azure(ws: Any, tmp_path: Path) -> None:
    ref = "azureml://registries/azureml/environments/tensorflow-2.16-cuda12/labels/latest"
    loaded = load_deployment(_yaml(tmp_path, f"environment: {ref}\n"))
    assert loaded.spec.environment == ref
    assert [e.field for e in loaded.pool_errors] == ["environment"]  # a pool refuses it
    assert await apply.deployment_warnings(ws, loaded) == []  # Azure ML has it


async def test_an_mlflow_no_code_deployment_goes_with_no_code_and_no_environment(
    ws: Any, seeded: Any, tmp_path: Path
) -> None:
    model = Path(__file__).resolve().parents[1] / "scoring" / "examples" / "ncd"
    path = tmp_path / "ncd.yml"
    path.write_text(
        "name: ncd\nendpoint_name: my-endpoint\n"
        f"model: {{path: {model / 'sklearn-diabetes' / 'model'}, type: mlflow_model}}\n"
    )
    loaded = load_deployment(path)
    await (await apply.create_deployment(ws, loaded)).wait()
    (model_put,) = seeded.calls("PUT", "/models/my-endpoint-ncd/versions/")
    assert model_put.body["properties"]["modelType"] == "mlflow_model"
    props = seeded.calls("PUT", "/deployments/ncd")[0].body["properties"]
    # as az ml sends it: Azure generates the scoring script and the environment itself
    assert "codeConfiguration" not in props and "environmentId" not in props
    assert seeded.calls("PUT", "/codes/") == [] and seeded.calls("PUT", "/environments/") == []


async def test_a_registered_model_with_no_code_goes_as_az_sends_it_or_is_refused(
    ws: Any, seeded: Any, tmp_path: Path
) -> None:
    model = Path(__file__).resolve().parents[1] / "scoring" / "examples" / "ncd"
    spec = load_model(
        name="ncd-mlflow",
        model_path=str(model / "sklearn-diabetes" / "model"),
        model_type="mlflow_model",
    )
    registered = await ws.create_model(spec)
    assert registered.type == "mlflow_model"
    path = tmp_path / "ref.yml"
    path.write_text(f"name: byref\nendpoint_name: my-endpoint\nmodel: {registered.ref}\n")
    await (await apply.create_deployment(ws, load_deployment(path))).wait()
    props = seeded.calls("PUT", "/deployments/byref")[0].body["properties"]
    assert "codeConfiguration" not in props and "environmentId" not in props

    # a custom model with no code: refused before the deployment is sent
    path.write_text("name: custom\nendpoint_name: my-endpoint\nmodel: azureml:sklearn-demo:2\n")
    with pytest.raises(InvalidInput) as info:
        await apply.create_deployment(ws, load_deployment(path))
    assert info.value.field == "code_configuration"
    assert "custom_model" in str(info.value)
    assert seeded.calls("PUT", "/deployments/custom") == []
