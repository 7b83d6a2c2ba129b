"""MLflow no-code deployments (issue 10, part 4) through the real CLI, a real control plane,
a real uv build and the real gateway: the official ncd sklearn example
(tests/scoring/examples/ncd/, from Azure/azureml-examples, MIT), deployed from its own YAML
with no code_configuration and no environment, answers its sample request as Azure does.

One environment is built (the model's conda.yaml, mlflow as mlflow-skinny); the refusals
build nothing."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import httpx
import pytest
from modeldeck.services.environments.interpreters import uv_binary

from .conftest import REPO, Cli

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(600),
    pytest.mark.skipif(uv_binary() is None, reason="uv is a modeldeck dependency: install it"),
]

NCD = REPO / "tests" / "scoring" / "examples" / "ncd"


def _ncd(cli: Cli, work: Path) -> Path:
    dest = work / "ncd"
    shutil.copytree(NCD, dest)
    cli("cluster create --name ncdpool")
    cli("online-endpoint create -f ncd/create-endpoint.yaml --set compute=azureml:ncdpool")
    return dest


def _envs(cli: Cli) -> list[str]:
    root = cli.home / "data" / "envs"
    return sorted(p.name for p in root.iterdir() if p.name != ".locks") if root.exists() else []


def _post(uri: str, key: str, body: bytes) -> httpx.Response:
    return httpx.post(
        uri,
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=60.0,
    )


def test_the_ncd_sklearn_example_answers_as_azure_does(cli: Cli, work: Path) -> None:
    ncd = _ncd(cli, work)
    created = cli("online-deployment create -f ncd/sklearn-deployment.yaml --all-traffic")
    # the model's conda.yaml asks for mlflow: served with mlflow-skinny, and it says so
    assert "mlflow-skinny" in created.err, str(created)

    key = cli("online-endpoint get-credentials -n my-endpoint -o tsv --query primaryKey").out
    uri = cli("online-endpoint show -n my-endpoint -o tsv --query scoring_uri").out.strip()
    resp = _post(uri, key.strip(), (ncd / "sample-request-sklearn.json").read_bytes())
    # Azure's documented answer for this request: [11633.10..., 8522.11...], a JSON list
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    answer = resp.json()
    assert [round(x, 2) for x in answer] == [11633.1, 8522.12]

    # no input_data: a missing run() argument, which azmlinfsrv answers with 400 and a message
    missing = _post(uri, key.strip(), b'{"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]}')
    assert missing.status_code == 400, missing.text
    assert "input_data" in missing.json()["message"]

    # the swagger comes from the model's signature (the ten columns), as Azure's does
    spec_uri = cli("online-endpoint show -n my-endpoint -o tsv --query openapi_uri").out.strip()
    spec = httpx.get(spec_uri, headers={"Authorization": f"Bearer {key.strip()}"}, timeout=30.0)
    assert spec.status_code == 200
    assert "s6" in spec.text and "bmi" in spec.text

    # the model was registered as an mlflow_model; its environment built once, in DATA_DIR/envs
    model = cli("model show --name mir-sample-sklearn-ncd-model --version 2").json()
    assert model["type"] == "mlflow_model"
    assert len(_envs(cli)) == 1
    logs = cli("online-deployment get-logs -e my-endpoint -n sklearn-deployment --lines 400").out
    assert "scikit-learn==1.7.0" in logs

    # the same model registered with --type mlflow_model and named by reference, no code:
    # the same environment (one build), the same answer
    cli("model create --name ncd-model --path ncd/sklearn-diabetes/model --type mlflow_model")
    (work / "by-ref.yml").write_text(
        "name: by-ref\nendpoint_name: my-endpoint\nmodel: azureml:ncd-model:1\n"
    )
    cli("online-deployment create -f by-ref.yml")
    by_ref = httpx.post(
        uri,
        content=(ncd / "sample-request-sklearn.json").read_bytes(),
        headers={
            "Authorization": f"Bearer {key.strip()}",
            "Content-Type": "application/json",
            "azureml-model-deployment": "by-ref",
        },
        timeout=60.0,
    )
    assert by_ref.status_code == 200 and by_ref.content == resp.content
    assert len(_envs(cli)) == 1


def _write(work: Path, name: str, body: str) -> Path:
    path = work / name
    path.write_text(textwrap.dedent(body))
    return path


def test_no_code_refusals_name_the_field_and_send_nothing(cli: Cli, work: Path) -> None:
    _ncd(cli, work)
    (work / "not-mlflow").mkdir()
    (work / "not-mlflow" / "model.pkl").write_bytes(b"x")
    cli("model create --name custom-demo --path not-mlflow")
    cases = [
        # an mlflow_model with no MLmodel file
        (
            """\
            name: nomlmodel
            endpoint_name: my-endpoint
            model: {path: not-mlflow, type: mlflow_model}
            """,
            ["model.path", "no MLmodel file", "mlflow_model"],
        ),
        # a custom model with no code_configuration
        (
            """\
            name: custom
            endpoint_name: my-endpoint
            model: {path: not-mlflow}
            """,
            ["code_configuration", "custom_model", "scoring_script"],
        ),
        # a registered custom model with no code_configuration (its type looked up)
        (
            """\
            name: registered
            endpoint_name: my-endpoint
            model: azureml:custom-demo:1
            """,
            ["code_configuration", "azureml:custom-demo:1 is a custom_model", "mlflow_model"],
        ),
        # an environment with no code: Azure takes the MLflow model's own
        (
            """\
            name: withenv
            endpoint_name: my-endpoint
            model: {path: ncd/sklearn-diabetes/model, type: mlflow_model}
            environment: azureml:AzureML-sklearn-1.5@latest
            """,
            ["environment", "code_configuration"],
        ),
    ]
    for i, (body, words) in enumerate(cases):
        path = _write(work, f"bad{i}.yml", body)
        r = cli(f"online-deployment create -f {path.name}", ok=False)
        assert r.code == 2, str(r)
        for word in words:
            assert word in r.err, str(r)
    assert cli("online-deployment list -e my-endpoint").json() == []
    assert [m["name"] for m in cli("model list").json()] == ["custom-demo"]
    assert _envs(cli) == []

    # model create: --type mlflow_model needs the MLmodel; az's triton_model is refused
    r = cli("model create --name ncd-model --path not-mlflow --type mlflow_model", ok=False)
    assert r.code == 2 and "no MLmodel file" in r.err, str(r)
    r = cli("model create --name ncd-model --path not-mlflow --type triton_model", ok=False)
    assert r.code == 2 and "type" in r.err and "mlflow_model" in r.err, str(r)
    made = cli(
        "model create --name ncd-model --path ncd/sklearn-diabetes/model --type mlflow_model"
    )
    assert made.json()["type"] == "mlflow_model"
