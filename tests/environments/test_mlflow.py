"""The environment of an MLflow no-code deployment, from the model's own files
(services/environments/mlflow.py), resolved with the same rules as any environment."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from modeldeck.services import environments
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.environments.mlflow import mlflow_environment, read_mlmodel

NCD_MODEL = (
    Path(__file__).parents[1] / "scoring" / "examples" / "ncd" / "sklearn-diabetes" / "model"
)

MLMODEL = """\
flavors:
  python_function:
    loader_module: mlflow.sklearn
    model_path: model.pkl
    python_version: 3.11.7
    {env}
"""


def _model(tmp: Path, env: str = "", **files: str) -> Path:
    folder = tmp / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text(MLMODEL.format(env=env))
    for name, text in files.items():
        (folder / name.replace("_yaml", ".yaml").replace("_txt", ".txt")).write_text(
            textwrap.dedent(text)
        )
    return folder


def _pip(conda: dict) -> list[str]:
    return next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))


def test_the_ncd_example_conda_file_with_mlflow_as_skinny() -> None:
    conda, notes = mlflow_environment(NCD_MODEL)
    assert "python=3.12" in conda["dependencies"]
    pip = _pip(conda)
    assert "mlflow" not in pip and pip[0] == "mlflow-skinny"
    assert "scikit-learn==1.7.0" in pip and "numpy==2.3.1" in pip
    assert pip[-2:] == ["inference-schema", "pandas"]  # what the scoring script imports
    assert any("mlflow-skinny" in n for n in notes)
    # the same resolution rules as any environment: pip's names, sorted, one key
    spec = environments.environment_from_dict(
        {"conda_file": conda}, base_dir=NCD_MODEL, source="t", default_name="ncd"
    )
    resolved = environments.resolve(spec)
    assert "scikit-learn==1.7.0" in resolved.requirements
    again = environments.resolve(spec)
    assert again.key == resolved.key


def test_a_pinned_mlflow_keeps_its_version_and_listed_packages_are_not_added(
    tmp_path: Path,
) -> None:
    folder = _model(
        tmp_path,
        conda_yaml="""\
        dependencies:
          - python=3.11
          - pip:
            - mlflow[extras]==2.7.1
            - pandas==2.0.3
            - inference_schema==1.8
        """,
    )
    pip = _pip(mlflow_environment(folder)[0])
    assert pip == ["mlflow-skinny==2.7.1", "pandas==2.0.3", "inference_schema==1.8"]


def test_python_env_yaml_and_its_requirements_file(tmp_path: Path) -> None:
    folder = _model(
        tmp_path,
        env="env: {conda: missing.yaml, virtualenv: python_env.yaml}",
        python_env_yaml="""\
        python: 3.10.13
        build_dependencies: [pip, setuptools]
        dependencies:
          - -r requirements.txt
        """,
        requirements_txt="""\
        # written by mlflow
        mlflow==2.9.2
        scikit-learn==1.3.2
        """,
    )
    conda, _ = mlflow_environment(folder)
    assert conda["dependencies"][0] == "python=3.10"
    assert _pip(conda)[:2] == ["mlflow-skinny==2.9.2", "scikit-learn==1.3.2"]


def test_requirements_txt_alone_takes_the_mlmodel_python(tmp_path: Path) -> None:
    folder = _model(tmp_path, requirements_txt="scikit-learn==1.3.2\n")
    conda, _ = mlflow_environment(folder)
    assert conda["dependencies"][0] == "python=3.11"
    assert _pip(conda) == ["scikit-learn==1.3.2", "mlflow-skinny", "inference-schema", "pandas"]


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("none", ["no MLmodel file"]),
        ("file", ["must be a folder"]),
        ("no-pyfunc", ["python_function"]),
        ("no-deps", ["conda.yaml", "requirements.txt"]),
        ("bad-yaml", ["MLmodel", "not valid YAML"]),
    ],
)
def test_refusals_name_the_field_the_value_and_the_fix(
    tmp_path: Path, setup: str, words: list[str]
) -> None:
    folder = tmp_path / "model"
    if setup == "file":
        folder.write_bytes(b"x")
    else:
        folder.mkdir()
    if setup == "no-pyfunc":
        (folder / "MLmodel").write_text("flavors:\n  sklearn: {pickled_model: model.pkl}\n")
    if setup == "no-deps":
        (folder / "MLmodel").write_text(MLMODEL.format(env=""))
    if setup == "bad-yaml":
        (folder / "MLmodel").write_text("flavors: [unclosed\n")
    with pytest.raises(InvalidInput) as err:
        mlflow_environment(folder)
    assert err.value.field == "model.path"
    assert err.value.fix
    for word in words:
        assert word in str(err.value)


def test_read_mlmodel_of_the_ncd_example(tmp_path: Path) -> None:
    doc = read_mlmodel(NCD_MODEL)
    assert doc["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    copy = tmp_path / "copy"
    shutil.copytree(NCD_MODEL, copy)
    (copy / "MLmodel").unlink()
    with pytest.raises(InvalidInput, match="no MLmodel file"):
        read_mlmodel(copy, field="path")
