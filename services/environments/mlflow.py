"""MLflow models: the environment a no-code deployment runs in, from the model's own files.

Azure ML serves a ``mlflow_model`` deployed with no ``code_configuration`` with a scoring
script of its own, in an environment built from the conda dependencies the model declares
plus the packages its inference needs (``mlflow-skinny`` among them). modeldeck does the
same through this package's rules (conda mapping, interpreters, pip configuration, one
environment per content):

* the model's ``MLmodel`` (YAML) must exist and have a ``python_function`` flavour, which
  ``mlflow.pyfunc.load_model`` loads;
* the dependencies come from the file the flavour's ``env`` names (``conda.yaml``, or
  ``{conda: ..., virtualenv: python_env.yaml}``), else ``conda.yaml``, else
  ``python_env.yaml`` (its ``python`` and ``dependencies``, ``-r requirements.txt`` read
  in place), else ``requirements.txt`` with the flavour's ``python_version``;
* ``mlflow`` in them becomes ``mlflow-skinny`` (same version constraint): the model is only
  loaded and called, which ``mlflow-skinny`` does, at half the size; ``mlflow-skinny``,
  ``inference-schema`` and ``pandas`` (what the scoring script imports) are added when the
  model does not list them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..api.errors import InvalidInput
from ..specs import yamlload
from .conda import REQUIREMENT, canonical_name
from .spec import read_conda_file

#: what the no-code scoring script imports, added when the model does not list it
ADDED = ("mlflow-skinny", "inference-schema", "pandas")

_FIX_NO_MLMODEL = (
    "give the folder mlflow.save_model or mlflow.<flavor>.log_model wrote (it holds MLmodel), "
    "or declare the model type: custom_model and give code_configuration (code and "
    "scoring_script)"
)


def read_mlmodel(model_dir: Path | str, *, field: str = "model.path") -> dict[str, Any]:
    """The parsed ``MLmodel`` of the model at ``model_dir``; InvalidInput (naming ``field``)
    when it is missing, unreadable, or has no ``python_function`` flavour."""
    folder = Path(model_dir)
    path = folder / "MLmodel"
    if not folder.is_dir():
        raise InvalidInput(
            field,
            str(folder),
            "is an mlflow_model, which must be a folder holding an MLmodel file (a file given)",
            _FIX_NO_MLMODEL,
        )
    if not path.is_file():
        raise InvalidInput(
            field, str(folder), "is an mlflow_model with no MLmodel file in it", _FIX_NO_MLMODEL
        )
    doc = yamlload.safe_load(yamlload.read_text(path, field=field), str(path), field=field)
    if not isinstance(doc, dict):
        raise InvalidInput(
            field,
            str(path),
            f"is not an MLmodel file (a {type(doc).__name__}, not a mapping)",
            _FIX_NO_MLMODEL,
        )
    flavors = doc.get("flavors")
    if not isinstance(flavors, dict) or not isinstance(flavors.get("python_function"), dict):
        raise InvalidInput(
            field,
            str(path),
            "has no python_function flavour: mlflow.pyfunc.load_model, which no-code "
            "deployments serve the model with, cannot load it",
            "save the model with an mlflow flavour that writes python_function (mlflow.sklearn, "
            "mlflow.pyfunc, ...), or give code_configuration with a scoring script that loads it",
        )
    return doc


def _requirements(path: Path, field: str) -> list[str]:
    text = yamlload.read_text(path, field=field)
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _major_minor(version: Any) -> str | None:
    found = re.match(r"^\s*(\d+)\.(\d+)", str(version or ""))
    return f"{found.group(1)}.{found.group(2)}" if found else None


def _pip_lines(lines: list[Any], base: Path, field: str) -> list[str]:
    """``-r file`` lines read in place (relative to ``base``), so the mlflow rule sees them."""
    out: list[str] = []
    for line in lines:
        text = str(line).strip()
        match = re.match(r"^(?:-r|--requirement)[\s=]+(.+)$", text)
        if match:
            out += _requirements(base / match.group(1).strip(), field)
        else:
            out.append(text)
    return out


def _skinny(lines: list[str]) -> tuple[list[str], list[str]]:
    """``mlflow`` -> ``mlflow-skinny`` (extras dropped, constraint kept); then what is missing
    of :data:`ADDED`. Returns (lines, notes)."""
    out: list[str] = []
    notes: list[str] = []
    names: set[str] = set()
    for line in lines:
        match = REQUIREMENT.match(line) if not line.startswith("-") else None
        if match and canonical_name(match.group(1)) == "mlflow":
            rest = match.group(3).strip()
            out.append(f"mlflow-skinny{rest}")
            notes.append(
                f"'{line}' is installed as 'mlflow-skinny{rest}': a no-code deployment only "
                "loads and calls the model (mlflow.pyfunc), which mlflow-skinny does at about "
                "half the size"
            )
            names.add("mlflow-skinny")
            continue
        if match:
            names.add(canonical_name(match.group(1)))
        out.append(line)
    added = [name for name in ADDED if name not in names]
    if added:
        notes.append(f"added {', '.join(added)} (the no-code scoring script imports them)")
    return out + added, notes


def mlflow_environment(
    model_dir: Path | str, *, field: str = "model.path"
) -> tuple[dict[str, Any], list[str]]:
    """The conda document of the environment a no-code deployment of the MLflow model at
    ``model_dir`` runs in, and notes for the build log (what was changed). Relative paths
    in it are relative to ``model_dir``. InvalidInput (naming ``field``) for a model with no
    usable MLmodel, or no dependencies file."""
    folder = Path(model_dir)
    mlmodel = read_mlmodel(folder, field=field)
    pyfunc = mlmodel["flavors"]["python_function"]
    env = pyfunc.get("env")
    conda_name = env.get("conda") if isinstance(env, dict) else env
    venv_name = env.get("virtualenv") if isinstance(env, dict) else None
    conda_path = folder / str(conda_name or "conda.yaml")
    venv_path = folder / str(venv_name or "python_env.yaml")
    reqs_path = folder / "requirements.txt"
    if conda_path.is_file():
        conda = read_conda_file(conda_path, field=field)
        deps: list[Any] = []
        pip: list[str] = []
        for dep in conda["dependencies"]:
            if isinstance(dep, dict) and "pip" in dep:
                pip += _pip_lines(list(dep.get("pip") or []), folder, field)
            else:
                deps.append(dep)
        source = conda_path.name
    elif venv_path.is_file():
        doc = yamlload.safe_load(
            yamlload.read_text(venv_path, field=field), str(venv_path), field=field
        )
        if not isinstance(doc, dict):
            raise InvalidInput(
                field,
                str(venv_path),
                "is not a python_env.yaml (not a mapping)",
                "give python_env.yaml as mlflow writes it: python:, dependencies:",
            )
        version = _major_minor(doc.get("python") or pyfunc.get("python_version"))
        deps = [f"python={version}"] if version else []
        pip = _pip_lines(list(doc.get("dependencies") or []), folder, field)
        source = venv_path.name
    elif reqs_path.is_file():
        version = _major_minor(pyfunc.get("python_version"))
        deps = [f"python={version}"] if version else []
        pip = _requirements(reqs_path, field)
        source = reqs_path.name
    else:
        raise InvalidInput(
            field,
            str(folder),
            "is an mlflow_model with no conda.yaml, python_env.yaml or requirements.txt: its "
            "packages are unknown",
            "save the model with mlflow (it writes conda.yaml and requirements.txt), or add a "
            "requirements.txt listing the packages the model needs",
        )
    pip, notes = _skinny(pip)
    notes.insert(0, f"MLflow model: its packages from {source}")
    return {"name": "mlflow-env", "dependencies": [*deps, {"pip": pip}]}, notes
