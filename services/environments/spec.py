"""An Azure ML v2 environment as modeldeck reads it (``environment.schema.json``).

The fields are those of https://azuremlschemas.azureedge.net/latest/environment.schema.json:
``name`` (required), ``version``, ``description``, ``tags``, ``image``, ``conda_file`` (a
path relative to the YAML file, or the conda document inline), ``build`` (a Docker build
context), ``os_type`` and ``inference_config``. One of ``image``, ``conda_file`` or ``build``
must be there (Azure also requires ``image`` beside ``conda_file``; locally the conda file
alone is enough, so modeldeck does not insist).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api.errors import InvalidInput
from ..specs import yamlload

#: the keys an environment YAML may hold (``$schema`` is the editor's)
ENVIRONMENT_KEYS = (
    "$schema",
    "name",
    "version",
    "description",
    "tags",
    "image",
    "conda_file",
    "build",
    "os_type",
    "inference_config",
    "properties",
)


@dataclass(frozen=True)
class EnvironmentSpec:
    """An environment: an image, a conda file (parsed), or both."""

    name: str
    version: str | None = None
    image: str | None = None
    #: the conda document, parsed (``None``: no conda file)
    conda_file: dict[str, Any] | None = None
    #: where the conda document was read from (``None``: inline or none)
    conda_file_path: Path | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: the directory relative paths (``-r reqs.txt`` in the ``pip:`` list) are taken from
    base_dir: Path | None = None
    #: ``build.path`` / ``build.dockerfile_path``: a Docker build context (Kubernetes only)
    build: dict[str, str] | None = None
    os_type: str = "linux"
    #: a curated environment's name as the deployment gave it (see :mod:`.curated`)
    curated: str | None = None


def _text(data: dict[str, Any], key: str, source: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise InvalidInput(
                key, None, f"is required ({source})", f"add '{key}: ...' to {source}"
            )
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInput(key, value, f"must be a string ({source})", f"write {key}: <text>")
    text = str(value).strip()
    if required and not text:
        raise InvalidInput(key, value, f"must not be empty ({source})", f"give the {key}")
    return text or None


def read_conda_file(path: Path, *, field: str = "conda_file") -> dict[str, Any]:
    """The conda document at ``path``, parsed within the YAML bounds."""
    source = str(path)
    text = yamlload.read_text(path, field=field)
    doc = yamlload.safe_load(text, source, field=field)
    return check_conda_document(doc, source, field=field)


def check_conda_document(doc: Any, source: str, *, field: str = "conda_file") -> dict[str, Any]:
    """``doc`` if it has the shape of a conda environment file, else InvalidInput."""
    if not isinstance(doc, dict):
        raise InvalidInput(
            field,
            source,
            f"is not a conda environment file (a {type(doc).__name__}, not a mapping)",
            "give a conda file with 'dependencies:' (a list), as `conda env export` writes",
        )
    deps = doc.get("dependencies", [])
    if deps is None:
        deps = []
    if not isinstance(deps, list):
        raise InvalidInput(
            f"{field}.dependencies",
            deps,
            f"must be a list ({source})",
            "write dependencies as a list: '- python=3.11', '- pip:' ...",
        )
    return {**doc, "dependencies": deps}


def environment_from_dict(
    data: Any, *, base_dir: Path, source: str, default_name: str | None = None
) -> EnvironmentSpec:
    """An :class:`EnvironmentSpec` from a parsed environment mapping.

    ``base_dir`` is where a ``conda_file`` path and ``build.path`` are relative to (the YAML
    file's directory); ``source`` names the document in errors. ``default_name`` is used when
    the mapping has no name (an inline environment in a deployment YAML)."""
    if not isinstance(data, dict):
        raise InvalidInput(
            "environment",
            source,
            f"must be a mapping ({type(data).__name__} given)",
            "write the environment as 'name: ...', 'image: ...', 'conda_file: ...'",
        )
    unknown = sorted(str(k) for k in data if k not in ENVIRONMENT_KEYS)
    if unknown:
        raise InvalidInput(
            unknown[0],
            data[unknown[0]],
            f"is not an environment key ({source})",
            "use only: " + ", ".join(k for k in ENVIRONMENT_KEYS if k != "$schema"),
        )
    name = _text(data, "name", source, required=default_name is None) or default_name
    assert name is not None
    tags_raw = data.get("tags") or {}
    if not isinstance(tags_raw, dict):
        raise InvalidInput("tags", tags_raw, f"must be a mapping ({source})", "write tags: {k: v}")
    tags = {str(k): "" if v is None else str(v) for k, v in tags_raw.items()}
    conda_raw = data.get("conda_file")
    conda: dict[str, Any] | None = None
    conda_path: Path | None = None
    if isinstance(conda_raw, str) and conda_raw.strip():
        conda_path = (base_dir / conda_raw.strip()).resolve()
        conda = read_conda_file(conda_path)
    elif isinstance(conda_raw, dict):
        conda = check_conda_document(conda_raw, f"{source} (inline conda_file)")
    elif conda_raw is not None:
        raise InvalidInput(
            "conda_file",
            conda_raw,
            f"must be a path or a mapping ({source})",
            "write conda_file: conda.yaml (relative to the YAML file) or the conda document",
        )
    build_raw = data.get("build")
    build: dict[str, str] | None = None
    if build_raw is not None:
        if not isinstance(build_raw, dict) or not build_raw.get("path"):
            raise InvalidInput(
                "build",
                build_raw,
                f"must be a mapping with 'path' ({source})",
                "write build: {path: docker-context, dockerfile_path: Dockerfile}",
            )
        build = {str(k): str(v) for k, v in build_raw.items()}
    image = _text(data, "image", source)
    if image is None and conda is None and build is None:
        raise InvalidInput(
            "environment",
            source,
            "has none of image, conda_file or build",
            "give 'image:', 'conda_file:' (or both), or 'build:'",
        )
    os_type = (_text(data, "os_type", source) or "linux").lower()
    if os_type != "linux":  # az ml takes windows too; accepting it would ignore it here
        raise InvalidInput(
            "os_type",
            os_type,
            "must be linux: modeldeck builds Linux environments only (az ml's windows "
            "environments are not made here)",
            "write os_type: linux (or leave it out: linux is the default, as in az ml)",
        )
    return EnvironmentSpec(
        name=name,
        version=_text(data, "version", source),
        image=image,
        conda_file=conda,
        conda_file_path=conda_path,
        description=_text(data, "description", source),
        tags=tags,
        base_dir=conda_path.parent if conda_path is not None else base_dir,
        build=build,
        os_type=os_type,
    )


def load_environment_yaml(path: Path | str) -> EnvironmentSpec:
    """Read an environment YAML (``az ml environment create -f``) into an EnvironmentSpec."""
    p = Path(path)
    text = yamlload.read_text(p, field="file")
    data = yamlload.safe_load(text, str(p), field="file")
    return environment_from_dict(data, base_dir=p.resolve().parent, source=str(p))
