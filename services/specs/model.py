"""The model shape: a model YAML file and/or flags, or a deployment's inline ``model:``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..api import validation
from ..api.domain import ModelSpec
from ..api.errors import InvalidInput
from .document import Doc, at, invalid_at, read_yaml
from .schema import (
    Key,
    Shape,
    choice,
    field_path,
    integer,
    read_text,
    renamed,
    resolve_path,
    str_map,
    text,
)
from .setargs import Override, apply_overrides

MODEL = Shape(
    "model",
    (
        Key("$schema"),
        Key("name"),  # required in a file, a default inline: read by the loaders
        Key("version", integer(lo=1, example=1), default=None),  # None: the next version
        Key("path"),  # resolved against the file: read by the loaders
        Key("description", text),
        Key("tags", str_map),
        # az ml's spellings; triton_model is named in the error
        Key("type", choice(list(validation.MODEL_TYPES))),
        Key("properties"),
    ),
    ModelSpec,
)
_READ = ("version", "description", "tags", "type")  # in this order, after name and path


def load_model(
    path: str | Path | None = None,
    overrides: Iterable[Override] = (),
    *,
    name: str | None = None,
    model_path: str | None = None,
    version: int | str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    model_type: str | None = None,
) -> ModelSpec:
    """A model from a YAML file and/or flags (flags win); ``path`` in the file is relative to it."""
    doc = read_yaml(path, "model") if path else Doc({}, "model", None)
    # --set first, then the flags: they win (azext_mlv2 ml_model_create appends them to
    # params_override after --set)
    apply_overrides(doc, overrides)
    flags = {
        "name": name,
        "path": model_path,
        "version": version,
        "description": description,
        "type": model_type,
    }
    for key, value in flags.items():
        if value is not None:
            doc.data[key] = value
            doc.where[(key,)] = f"--{key} {value}"
            doc.from_set.add((key,))
    if tags:
        doc.data.setdefault("tags", {}).update(tags)
    data = doc.data
    MODEL.check(doc, data)
    raw_name = data.get("name")
    if raw_name is None:
        raise InvalidInput("name", None, "is required", "pass --name or set name: in the YAML")
    try:
        mname = validation.name(raw_name, "name")
    except InvalidInput as exc:
        raise at(doc, ("name",), exc) from None
    raw_path = read_text(doc, data, "path", ())
    if not raw_path:
        raise InvalidInput("path", None, "is required", "pass --path to a model file or folder")
    resolved = resolve_path(doc, ("path",), raw_path)
    if doc.base_for(("path",)) is None and not validation.is_remote_asset(raw_path):
        resolved = str(Path(raw_path).expanduser().resolve())
    spec = ModelSpec(name=mname, path=resolved, **MODEL.read(doc, data, (), *_READ))
    try:
        validation.model_spec(spec)
    except InvalidInput as exc:
        raise at(doc, field_path(exc.field), exc) from None
    return spec


def inline_model(
    doc: Doc, data: Mapping[str, Any], ep_name: str, dep_name: str
) -> tuple[str, ModelSpec | None]:
    """A deployment's ``model:``: a reference (kept as written), or an inline model to
    register first, named ``ENDPOINT-DEPLOYMENT`` unless it says; then the reference is a
    placeholder until it is registered."""
    value = data.get("model")
    if value is None:
        raise InvalidInput(
            "model",
            None,
            "is required",
            "set model: azureml:NAME:VERSION (a registered model), or model: {path: ./model}",
            message=f"{doc.source}: the deployment needs a model",
        )
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        ref = str(value).strip()
        return ref, None
    if not isinstance(value, dict):
        raise invalid_at(
            doc,
            ("model",),
            value,
            "must be a model reference (azureml:NAME:VERSION) or a mapping with path:",
            "write model: azureml:sklearn-demo:1, or model: {path: ./model}",
        )
    MODEL.check(doc, value, ("model",))
    raw_path = read_text(doc, value, "path", ("model",))
    if not raw_path:
        raise InvalidInput(
            "model.path",
            None,
            "is required in an inline model",
            "set model.path to the model file or folder, relative to the YAML file",
            message=f"{doc.loc(('model',))}: an inline model needs a path",
        )
    model_path = resolve_path(doc, ("model", "path"), raw_path)
    default_name = f"{ep_name}-{dep_name}"[:32].rstrip("-")
    mname = read_text(doc, value, "name", ("model",)) or default_name
    spec = ModelSpec(name=mname, path=model_path, **MODEL.read(doc, value, ("model",), *_READ))
    try:
        validation.model_spec(spec)
    except InvalidInput as exc:
        sub = "path" if exc.field == "path" else exc.field
        raise at(doc, ("model", sub), renamed(exc, f"model.{exc.field}")) from None
    # a placeholder that passes the reference rule until the model is registered
    return f"azureml:{mname}@latest", spec
