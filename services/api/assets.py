"""Domain types: models and environments (see domain.py: re-exported there, loaded on first
use)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: str  # a file or a folder on the caller's machine
    version: int | None = None  # None: next version
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    #: az ml's model types: "custom_model", or "mlflow_model" (a folder with an MLmodel file,
    #: which a deployment with no code_configuration serves through mlflow.pyfunc)
    type: str = "custom_model"


@dataclass(frozen=True)
class Model:
    name: str
    version: int
    path: str  # where the workspace keeps its copy
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    type: str = "custom_model"
    original_path: str | None = None
    created_at: float | None = None
    #: az ml's ``model archive``: hidden from ``list`` and from the latest version, still
    #: usable by its version (``model restore`` brings it back)
    archived: bool = False

    @property
    def ref(self) -> str:
        return f"azureml:{self.name}:{self.version}"


@dataclass(frozen=True)
class Environment:
    """A registered environment (``az ml environment``): an image, a conda file, or both.

    ``key`` names the isolated Python environment the content resolves to (local pools
    build it under ``DATA_DIR/envs/<key>``); ``size_bytes`` is its size once built and
    ``users`` the deployments (``endpoint/deployment``) that run in it."""

    name: str
    version: str = ""  # "": the next version
    image: str | None = None
    conda_file: dict[str, Any] | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    os_type: str = "linux"
    #: where relative paths in the conda file (``-r reqs.txt``) are taken from
    base_dir: str | None = None
    stage: str = "Development"  # "Archived" once archived
    created_at: float | None = None
    key: str | None = None
    size_bytes: int | None = None
    users: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"azureml:{self.name}:{self.version}"
