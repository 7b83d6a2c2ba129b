"""az ml's ``--set`` on create and update, through the CLI on the local workspace (a real
daemon): the azureml-examples scripts' own commands, with ``az ml`` replaced by ``modeldeck``.

* deploy-moe-openapi.sh: ``online-deployment create -f deployment.yml --set endpoint_name=$EP
  --set code_configuration.code=code-decorated --all-traffic``, then ``online-deployment update
  -f deployment.yml --set endpoint_name=$EP --set code_configuration.code=code-custom`` (no
  -n/-e: the names are the file's, as ``--set`` leaves them; the code folder relative to the
  YAML's folder, as azure-ai-ml resolves params_override against the file's base path);
* deploy-moe-binary-payloads.sh: ``online-deployment update -e $EP -n binary-payload --set
  code_configuration.scoring_script=...`` (no -f: the stored spec, its code folder kept);
* deploy-moe-inference-schema.sh: ``model create -f model.yml --set version=$RAND`` and
  ``online-deployment create -f deployment.yml --set model="azureml:NAME:$RAND" --set
  endpoint_name=$EP --all-traffic``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from modeldeck.cli.main import main

pytestmark = pytest.mark.e2e

SCORE = """
import json
def init():
    pass
def run(raw_data):
    return {{"code": "{name}", "rows": len(json.loads(raw_data)["data"])}}
"""

DEPLOYMENT = """\
name: openapi
endpoint_name: <my-endpoint-name>
model: azureml:sklearn-demo:1
code_configuration:
  code: <CODE_DIR>
  scoring_script: score.py
instance_count: 1
"""


# the commands are split as a shell splits them once it has removed its quotes


def _out(capsys: pytest.CaptureFixture[str], command: str) -> object:
    capsys.readouterr()
    assert main([*command.split(), "-o", "json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _scores(capsys: pytest.CaptureFixture[str]) -> object:
    return _out(capsys, "online-endpoint invoke -n my-endpoint --request-file sample-request.json")


@pytest.fixture
def openapi(work: Path) -> Path:
    """endpoints/openapi/: deployment.yml with placeholders, and two code folders."""
    base = work / "endpoints" / "openapi"
    for name in ("code-decorated", "code-custom"):
        (base / name).mkdir(parents=True)
        (base / name / "score.py").write_text(SCORE.format(name=name))
    (base / "deployment.yml").write_text(DEPLOYMENT)
    return base / "deployment.yml"


def test_create_then_update_from_the_file_with_set_names_and_code_beside_the_yaml(  # type: ignore[no-untyped-def]
    examples_cli: Callable[[str], int], openapi: Path, capsys
) -> None:
    yml = openapi.relative_to(Path.cwd())
    # create, then update -f with no -n/-e: the file's name, --set's endpoint_name; each
    # code folder beside the YAML, not in the current folder
    for verb, code, extra in (
        ("create", "code-decorated", " --all-traffic"),
        ("update", "code-custom", ""),
    ):
        command = (
            f"online-deployment {verb} -f {yml} --set endpoint_name=my-endpoint "
            f"--set code_configuration.code={code}{extra}"
        )
        assert examples_cli(command) == 0, command
        assert _scores(capsys) == {"code": code, "rows": 2}


def test_update_from_a_file_without_names_says_which_is_missing(  # type: ignore[no-untyped-def]
    examples_cli: Callable[[str], int], openapi: Path, capsys
) -> None:
    capsys.readouterr()
    code = examples_cli(f"online-deployment update -f {openapi.relative_to(Path.cwd())}")
    err = capsys.readouterr().err
    assert code != 0
    # the file's endpoint_name is a placeholder: no such endpoint (az: not found, too)
    assert "<my-endpoint-name>" in err or "endpoint_name" in err, err
    Path("noname.yml").write_text(DEPLOYMENT.replace("name: openapi\n", "", 1))
    assert (
        examples_cli("online-deployment update -f noname.yml --set endpoint_name=my-endpoint") == 2
    )
    assert "-n/--name is required (or -f FILE with name: in it)" in capsys.readouterr().err


def test_update_with_set_and_no_file_keeps_the_stored_code_folder(  # type: ignore[no-untyped-def]
    examples_cli: Callable[[str], int], work: Path, capsys
) -> None:
    (work / "blue" / "other.py").write_text(SCORE.format(name="other-script"))
    assert (
        examples_cli("online-deployment create -n blue -e my-endpoint -f blue.yml --all-traffic")
        == 0
    )
    assert _scores(capsys)["version"] == "blue"  # type: ignore[index]
    assert (
        examples_cli(
            "online-deployment update -e my-endpoint -n blue "
            "--set code_configuration.scoring_script=other.py"
        )
        == 0
    )
    assert _scores(capsys) == {"code": "other-script", "rows": 2}
    # az's several KEY=VALUE after one --set, values read as JSON
    assert (
        examples_cli(
            "online-deployment update -e my-endpoint -n blue --set instance_count=2 "
            "request_settings.request_timeout_ms=4000"
        )
        == 0
    )
    shown = _out(capsys, "online-deployment show -e my-endpoint -n blue")
    assert shown["instance_count"] == 2  # type: ignore[index]
    assert shown["request_settings"]["request_timeout_ms"] == 4000  # type: ignore[index]


def test_model_version_and_model_reference_from_set(  # type: ignore[no-untyped-def]
    examples_cli: Callable[[str], int], work: Path, capsys
) -> None:
    (work / "models").mkdir()
    (work / "models" / "model.yml").write_text("name: infschema\npath: ../model\n")
    assert examples_cli("model create -f models/model.yml --set version=4711") == 0
    model = _out(capsys, "model show -n infschema -v 4711")
    assert model["version"] in ("4711", 4711)  # type: ignore[index]
    Path("standard.yml").write_text(
        DEPLOYMENT.replace("<CODE_DIR>", "./blue").replace("model: azureml:sklearn-demo:1\n", "")
    )
    assert (
        examples_cli(
            "online-deployment create -f standard.yml --set model=azureml:infschema:4711 "
            "--set endpoint_name=my-endpoint --all-traffic"
        )
        == 0
    )
    shown = _out(capsys, "online-deployment show -e my-endpoint -n openapi")
    assert "infschema" in str(shown["model"])  # type: ignore[index]
    assert _scores(capsys)["version"] == "blue"  # type: ignore[index]


def test_endpoint_update_from_the_file_takes_its_name(  # type: ignore[no-untyped-def]
    examples_cli: Callable[[str], int], capsys
) -> None:
    assert examples_cli("online-endpoint update -f endpoint.yml --set description=renamed") == 0
    assert _out(capsys, "online-endpoint show -n my-endpoint")["description"] == "renamed"  # type: ignore[index]
    # create: the flags win over --set (az ml appends them to params_override last)
    assert (
        examples_cli("online-endpoint create -f endpoint.yml --set name=from-set -n from-flag") == 0
    )
    assert _out(capsys, "online-endpoint show -n from-flag")["name"] == "from-flag"  # type: ignore[index]


def test_environment_create_takes_set(  # type: ignore[no-untyped-def]
    examples_cli: Callable[[str], int], work: Path, capsys
) -> None:
    (work / "envs").mkdir()
    (work / "envs" / "env.yml").write_text("name: docker-env\nimage: python:3.11-slim\n")
    assert (
        examples_cli("environment create -f envs/env.yml --set version=5 description=from-set") == 0
    )
    shown = _out(capsys, "environment show -n docker-env -v 5")
    assert shown["description"] == "from-set"  # type: ignore[index]
