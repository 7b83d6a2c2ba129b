"""Issue 9, point 2, on Azure ML: the same input rules as the local store before any upload."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import CodeConfiguration, DeploymentSpec, ModelSpec
from modeldeck.services.api.errors import InvalidInput

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def test_a_model_with_a_link_out_or_a_device_is_not_uploaded(
    ws: Any, fake: Any, tmp_path: Path
) -> None:
    secret = tmp_path / "id_ed25519"  # stands for ~/.ssh: made here, not real
    secret.write_text("not for the workspace")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    (folder / "key").symlink_to(secret)
    with pytest.raises(InvalidInput) as err:
        await ws.create_model(ModelSpec(name="leaky", path=str(folder)))
    assert err.value.field == "path" and err.value.value == str(folder / "key")
    assert str(secret) in err.value.rule
    with pytest.raises(InvalidInput) as err:
        await ws.create_model(ModelSpec(name="zero", path="/dev/zero"))
    assert err.value.field == "path" and "/dev" in err.value.rule
    assert fake.blobs == {}
    assert fake.calls("POST", "startPendingUpload") == []


async def test_code_with_a_fifo_or_a_script_outside_is_not_uploaded(
    ws: Any, seeded: Any, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_bytes((EXAMPLES / "blue" / "score.py").read_bytes())
    os.mkfifo(code / "pipe")

    def spec(script: str = "score.py") -> DeploymentSpec:
        return DeploymentSpec(
            name="purple",
            endpoint_name="my-endpoint",
            model="azureml:sklearn-demo:2",
            code_configuration=CodeConfiguration(code=str(code), scoring_script=script),
        )

    with pytest.raises(InvalidInput) as err:
        await ws.create_deployment(spec())
    assert err.value.field == "code_configuration.code" and "FIFO" in err.value.rule
    with pytest.raises(InvalidInput) as err:
        await ws.create_deployment(spec("../blue/score.py"))
    assert err.value.field == "code_configuration.scoring_script"
    assert seeded.blobs == {}
    assert seeded.calls("PUT") == []
