"""The environment shape: a deployment's ``environment:`` (an image, a registered or
curated reference, or an inline mapping with a conda file, read and resolved here), and the
environment of an MLflow no-code deployment (from the model's own files)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api.domain import ModelSpec
from ..api.errors import InvalidInput
from .document import Doc, at, invalid_at
from .schema import Key, Shape, renamed

#: an inline ``environment:`` (read by :func:`services.environments.environment_from_dict`)
ENVIRONMENT = Shape(
    "environment",
    tuple(
        Key(k)
        for k in (
            "$schema",
            "name",
            "version",
            "image",
            "conda_file",
            "build",
            "inference_config",
            "os_type",
            "description",
            "tags",
        )
    ),
)


@dataclass
class NoCode:
    code: str
    scoring_script: str
    environment: dict[str, Any] | None  # None: a registered model, looked up when sent
    warnings: list[str]
    errors: list[InvalidInput]


def mlflow_no_code(
    doc: Doc, data: Mapping[str, Any], model: ModelSpec | None, names: dict[str, str]
) -> NoCode:
    """A deployment with no ``code_configuration``: served as Azure serves an MLflow model
    (modeldeck's scoring script, an environment from the model's own files), which needs an
    inline ``mlflow_model`` (or a registered one, checked when sent: :mod:`services.apply`);
    anything else is refused here, before anything is sent."""
    from ..scoring import MLFLOW_CODE, MLFLOW_SCRIPT

    where = doc.loc(("code_configuration",))
    if model is None:  # a registered model: its type is looked up when the deployment is sent
        if data.get("environment") is None:
            return NoCode(str(MLFLOW_CODE), MLFLOW_SCRIPT, None, [], [])
    elif model.type != "mlflow_model":
        what = f"the model is a {model.type}"
        raise InvalidInput(
            "code_configuration",
            None,
            f"is required unless the model is an mlflow_model ({what}): only MLflow models "
            "are served without a scoring script",
            "add code_configuration: {code: ./src, scoring_script: score.py}, or, for an MLflow "
            "model, model: {path: ./model, type: mlflow_model}",
            message=f"{where}: the deployment needs code_configuration (code and "
            f"scoring_script): {what}, and only an mlflow_model is served without one",
        )
    if data.get("environment") is not None:
        raise invalid_at(
            doc,
            ("environment",),
            data.get("environment"),
            "is given with no code_configuration: an MLflow no-code deployment takes its "
            "environment from the model (conda.yaml / requirements.txt)",
            "remove environment:, or give code_configuration (your scoring script) with it",
        )
    assert model is not None
    inline, warnings, errors = no_code_environment(
        Path(model.path), f"{doc.loc(('model',))} (MLflow no-code)", names, "model.path"
    )
    if inline is None:
        raise at(doc, ("model", "path"), errors[0]) from None
    return NoCode(str(MLFLOW_CODE), MLFLOW_SCRIPT, inline, warnings, errors)


def no_code_environment(
    folder: Path, env_where: str, names: Mapping[str, str], field_name: str
) -> tuple[dict[str, Any] | None, list[str], list[InvalidInput]]:
    """The inline environment of a no-code deployment of the MLflow model at ``folder``:
    (inline, warnings, what a local pool cannot build); (None, [], [error]) when the model
    cannot be read."""
    from .. import environments
    from ..environments.mlflow import mlflow_environment

    try:
        conda, notes = mlflow_environment(folder, field=field_name)
    except InvalidInput as exc:
        return None, [], [exc]
    default_name = f"{names['endpoint_name']}-{names['name']}"[:64]
    spec = environments.environment_from_dict(
        {"conda_file": conda}, base_dir=folder, source=env_where, default_name=default_name
    )
    warnings = [f"{env_where}: {n}" for n in notes]
    errors: list[InvalidInput] = []
    try:
        warnings += [f"{env_where}: {w}" for w in environments.resolve(spec).warnings]
    except InvalidInput as exc:
        errors.append(renamed(exc, f"{field_name} ({exc.field})"))
    inline = {
        "name": spec.name,
        "image": None,
        "conda_file": spec.conda_file,
        "base_dir": str(spec.base_dir) if spec.base_dir else None,
    }
    return inline, warnings, errors


def _environment_error(doc: Doc, exc: InvalidInput) -> InvalidInput:
    """An environment library error, its field under ``environment.``, with where it was."""
    name = exc.field if exc.field.startswith("environment") else f"environment.{exc.field}"
    sub = name.split(".")[1] if "." in name else None
    return at(doc, ("environment", sub) if sub else ("environment",), renamed(exc, name))


def inline_environment(
    doc: Doc, value: dict[str, Any], default_name: str, pool_errors: list[InvalidInput]
) -> tuple[str | None, dict[str, Any] | None, list[str], list[str]]:
    """An inline ``environment:`` mapping: (image, inline content, local warnings,
    Kubernetes warnings). A conda file is read here (unreadable: refused at once) and
    resolved: what a local pool cannot build (a package no Python environment can hold) goes
    to ``pool_errors``, refused before anything is sent when the cluster is a pool (Azure ML
    builds it with conda)."""
    from .. import environments

    base = doc.base_for(("environment", "conda_file")) or Path.cwd()
    try:
        env = environments.environment_from_dict(
            value, base_dir=base, source=doc.loc(("environment",)), default_name=default_name
        )
    except InvalidInput as exc:
        raise _environment_error(doc, exc) from None
    where = doc.loc(("environment",))
    if env.conda_file is None:
        if not env.image:
            return None, None, [], []
        return (
            env.image,
            None,
            [
                f"{where}: environment image '{env.image}' is ignored on local pools (replicas "
                "run with modeldeck's Python; Kubernetes clusters use it): add "
                "environment.conda_file (the packages the scoring script imports) to have them "
                "built into an environment of their own"
            ],
            [],
        )
    warnings: list[str] = []
    try:
        warnings = [f"{where}: {w}" for w in environments.resolve(env).warnings]
    except InvalidInput as exc:
        pool_errors.append(_environment_error(doc, exc))
    inline = {
        "name": env.name,
        "image": env.image,
        "conda_file": env.conda_file,
        "base_dir": str(env.base_dir) if env.base_dir else None,
    }
    kube: list[str] = []  # Kubernetes: the pods' init container builds the same lines
    return env.image, inline, warnings, kube


def referenced_environment(doc: Doc, ref: str, pool_errors: list[InvalidInput]) -> list[str]:
    """Checks on ``environment: <text>``: a curated name must be one a local pool knows
    (else ``pool_errors``; Azure ML has them all; its warnings are returned); a registered
    ``azureml:NAME:VERSION`` is looked up by the workspace; any other text is an image,
    which local pools do not use."""
    from .. import environments

    where = doc.loc(("environment",))
    if environments.is_curated_reference(ref):
        try:
            resolved = environments.resolve(environments.spec_from_reference(ref))
        except InvalidInput as exc:
            pool_errors.append(_environment_error(doc, exc))
            return []
        return [f"{where}: {w}" for w in resolved.warnings]
    if ref.startswith("azureml:"):
        return []
    return [
        f"{where}: environment '{ref}' is ignored on local pools (replicas run with "
        "modeldeck's Python; Kubernetes clusters use it as the image): give an environment "
        "with a conda_file to have the packages built"
    ]
