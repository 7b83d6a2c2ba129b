"""From an :class:`EnvironmentSpec` to what to build: interpreter, requirements, key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..api.errors import InvalidInput
from .conda import conda_to_pip
from .curated import curated_environment, is_curated_reference
from .interpreters import Interpreter, find_python
from .pipconfig import PipConfig, read_pip_config
from .spec import EnvironmentSpec

#: bump when the layout of a built environment changes (every key changes with it)
LAYOUT = 1


@dataclass(frozen=True)
class ResolvedEnvironment:
    """What to build for an environment, and the key it is built under."""

    key: str
    #: the Python version the environment asked for (``None``: not said)
    python_wanted: str | None
    #: the interpreter the environment is built from
    interpreter: Interpreter
    #: pip requirement lines (sorted, as given otherwise)
    requirements: tuple[str, ...]
    #: pip option lines from the conda file's ``pip:`` list (``--extra-index-url URL``,
    #: ``-r /abs/file``)
    options: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: False: nothing is known of the packages (an image-only environment)
    packages_known: bool = True
    image: str | None = None
    #: the user's pip configuration in force when resolved (what build() hands to uv)
    pip_config: PipConfig = field(default_factory=PipConfig, compare=False, repr=False)
    #: where it came from, for messages ("conda_file /x/conda.yaml", "curated sklearn-1.5")
    source: str = ""

    @property
    def python(self) -> Path:
        return self.interpreter.path


def spec_from_reference(ref: str, *, field: str = "environment") -> EnvironmentSpec:
    """A curated environment reference as a spec (its conda file from the curated table)."""
    if not is_curated_reference(ref):
        raise InvalidInput(
            field,
            ref,
            "is not a curated environment reference",
            "registered environments (azureml:NAME:VERSION) are looked up in the store",
        )
    env = curated_environment(ref, field=field)
    conda = {
        "name": env.name,
        "dependencies": [f"python={env.python}", {"pip": list(env.requirements)}],
    }
    return EnvironmentSpec(
        name=env.name,
        image=env.image,
        conda_file=conda,
        description=f"Azure ML curated environment {env.name} ({env.source})",
        curated=ref,
    )


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def environment_key(
    interpreter: Interpreter,
    requirements: list[str] | tuple[str, ...],
    options: list[str] | tuple[str, ...],
    files: list[Path],
    pip_config: PipConfig,
) -> str:
    """A stable hash of what decides the packages installed."""
    material = {
        "layout": LAYOUT,
        "python": [interpreter.implementation, interpreter.version],
        "requirements": sorted(requirements),
        "options": sorted(options),
        "files": sorted((str(f), _file_digest(f)) for f in files),
        "pip": pip_config.key_material(),
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def resolve(
    spec: EnvironmentSpec,
    *,
    pip_config: PipConfig | None = None,
    path: str | None = None,
    pyenv_root: Path | None = None,
) -> ResolvedEnvironment:
    """What to build for ``spec``: the interpreter, the requirements, warnings and the key.

    ``pip_config`` defaults to the user's (:func:`read_pip_config`); ``path``/``pyenv_root``
    replace ``$PATH`` and ``~/.pyenv`` when looking for the interpreter (tests)."""
    cfg = pip_config if pip_config is not None else read_pip_config()
    warnings: list[str] = []
    if spec.conda_file is None:
        interp, _ = find_python(None)
        what = f"image {spec.image}" if spec.image else "a Docker build context"
        warnings.append(
            f"environment '{spec.name}' has no conda_file: {what} is not used locally and no "
            "Python packages are known; the deployment runs with only the standard library "
            f"on Python {interp.version}. Add a conda_file listing the packages the scoring "
            "script imports (Kubernetes uses the image)"
        )
        key = environment_key(interp, [], [], [], cfg)
        return ResolvedEnvironment(
            key=key,
            python_wanted=None,
            interpreter=interp,
            requirements=(),
            warnings=tuple(warnings),
            packages_known=False,
            image=spec.image,
            pip_config=cfg,
            source=what,
        )
    source = (
        f"curated {spec.name}"
        if spec.curated
        else f"conda_file {spec.conda_file_path}"
        if spec.conda_file_path
        else "inline conda_file"
    )
    result = conda_to_pip(spec.conda_file, base_dir=spec.base_dir, source=source)
    warnings += result.warnings
    interp, warning = find_python(result.python, path=path, pyenv_root=pyenv_root)
    if warning:
        warnings.append(warning)
    requirements = tuple(sorted(dict.fromkeys(result.requirements), key=str.lower))
    key = environment_key(interp, requirements, result.options, result.files, cfg)
    return ResolvedEnvironment(
        key=key,
        python_wanted=result.python,
        interpreter=interp,
        requirements=requirements,
        options=tuple(result.options),
        warnings=tuple(warnings),
        packages_known=True,
        image=spec.image,
        pip_config=cfg,
        source=source,
    )
