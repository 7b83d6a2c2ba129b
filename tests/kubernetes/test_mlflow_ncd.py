"""An MLflow no-code deployment on Kubernetes (issue 10, parts 4 and 5): the ncd sklearn
example's YAML, loaded as the CLI loads it, renders manifests the strict schemas accept, with
modeldeck's MLflow scoring script and the model's own packages (mlflow as mlflow-skinny)
built by the pods' init container."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
from modeldeck.services import environments as envs
from modeldeck.services.api.domain import Model
from modeldeck.services.drivers.kubernetes import manifests as mf
from modeldeck.services.scoring import MLFLOW_CODE, MLFLOW_SCRIPT
from modeldeck.services.specs.deployment import load_deployment

NCD = Path(__file__).resolve().parents[1] / "scoring" / "examples" / "ncd"


def test_the_ncd_example_renders_with_the_mlflow_script_and_the_models_packages() -> None:
    loaded = load_deployment(NCD / "sklearn-deployment.yaml")
    spec = loaded.spec
    assert spec.code_configuration.code == str(MLFLOW_CODE)
    assert spec.code_configuration.scoring_script == MLFLOW_SCRIPT
    inline = spec.environment_inline
    assert inline is not None
    resolved = envs.resolve(
        envs.environment_from_dict(
            {"name": inline["name"], "conda_file": inline["conda_file"]},
            base_dir=Path(inline["base_dir"]),
            source="test",
        )
    )
    assert loaded.model_to_register is not None
    model = Model(
        name="mir-sample-sklearn-ncd-model", version=2, path=loaded.model_to_register.path
    )
    app = mf.collect_files(spec, model, str(MLFLOW_CODE), mf.environment_build(resolved))
    objs = mf.deployment_objects("ml", "my-endpoint", spec, app, model.ref)
    for obj in objs:
        kubernetes_validate.validate(obj, "1.33", strict=True)
    cm, dep = objs[0], objs[1]
    items = dep["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
    files = {
        i["path"]: cm["data"].get(i["key"]) or cm.get("binaryData", {}).get(i["key"]) for i in items
    }
    assert files["code/score.py"] == (MLFLOW_CODE / MLFLOW_SCRIPT).read_text()
    assert any(p.endswith("model/MLmodel") for p in files)
    lines = files["env/requirements.txt"].splitlines()
    assert "mlflow-skinny" in lines and "mlflow" not in lines
    assert "scikit-learn==1.7.0" in lines and "inference-schema" in lines
    env = {
        e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["AZUREML_ENTRY_SCRIPT"] == MLFLOW_SCRIPT
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["initContainers"]] == ["environment"]
