"""Azure ML environments, built locally: one isolated Python environment per distinct content.

Pure service code (no UI), async where it waits on processes. The flow::

    spec = load_environment_yaml("env.yml")            # or environment_from_dict(...) for an
                                                       # inline one, spec_from_reference(ref)
                                                       # for a curated name
    resolved = resolve(spec)                           # interpreter, requirements, warnings, key
    built = await build(resolved, root=envs_dir, log=print)
    subprocess.run([built.python, "-m", "scoring_host", ...])

API
---

:class:`EnvironmentSpec`
    frozen; the Azure ML v2 environment YAML fields (``environment.schema.json``): ``name``,
    ``version``, ``image``, ``conda_file`` (the parsed conda document), ``conda_file_path``,
    ``description``, ``tags``, ``build``, ``os_type``, plus ``base_dir`` (relative paths in
    the conda file's ``pip:`` list are taken from there) and ``curated`` (the reference a
    curated spec came from).
:func:`load_environment_yaml` (path) -> EnvironmentSpec
    reads an environment YAML and its conda file with the bounded YAML loader
    (:mod:`services.yamlload`); every problem an :class:`~services.errors.InvalidInput`.
:func:`environment_from_dict` (data, base_dir=, source=, default_name=) -> EnvironmentSpec
    the same from a mapping already parsed (an inline environment in a deployment YAML).
:func:`spec_from_reference` (ref) -> EnvironmentSpec
    a curated environment (``azureml://registries/azureml/environments/sklearn-1.5/labels/
    latest``, ``azureml:AzureML-sklearn-1.5@latest``...) through the table in :mod:`.curated`;
    an unknown curated name is an InvalidInput naming the known ones.
    :func:`is_curated_reference` tells a curated reference from a registered one
    (``azureml:NAME:VERSION``, which the store resolves).
:func:`resolve` (spec) -> ResolvedEnvironment
    conda dependencies mapped to pip requirements (rules in :mod:`.conda`), the ``pip:`` list
    as is, ``python=3.X`` met by an interpreter found on this machine (:mod:`.interpreters`;
    else the closest with a warning naming both), the user's pip configuration
    (:mod:`.pipconfig`), ``warnings``, and ``key``: a hash of the interpreter version, the
    sorted requirements, the option lines (with the content of ``-r``/``-c`` files) and the
    pip settings that change what is installed. An image-only environment resolves to no
    packages (``packages_known=False``) and a warning.
``async`` :func:`build` (resolved, root=, log=, offline=None, timeout=) -> BuiltEnvironment
    ``uv venv`` + ``uv pip install`` into ``root/<key>``, once per key: built in
    ``root/.tmp-<key>-*`` and renamed when complete; concurrent builds of one key (coroutines
    or processes) wait on ``root/.locks/<key>.lock`` and reuse the result; a failure removes
    the partial build and raises :class:`~services.errors.BackendError` with uv's own
    message. uv's output lines go to ``log`` as they come. ``BuiltEnvironment`` has ``key``,
    ``path``, ``python`` (``path/bin/python``), ``size_bytes`` and ``reused``. The
    environment holds only what was asked for: no pip, no modeldeck, none of its
    dependencies.
:func:`list_built` (root) -> list[BuiltInfo]
    key, path, size, last use (epoch seconds), python version, requirements.
:func:`prune` (root, keep, older_than_s) -> list[BuiltInfo]
    removes the environments whose key is not in ``keep`` and not used for ``older_than_s``.
"""

from __future__ import annotations

from .build import BuiltEnvironment, BuiltInfo, build, list_built, prune
from .curated import CURATED, CuratedEnvironment, curated_environment, is_curated_reference
from .interpreters import Interpreter, find_python
from .pipconfig import PipConfig, read_pip_config
from .resolve import ResolvedEnvironment, resolve, spec_from_reference
from .spec import EnvironmentSpec, environment_from_dict, load_environment_yaml

__all__ = [
    "CURATED",
    "BuiltEnvironment",
    "BuiltInfo",
    "CuratedEnvironment",
    "EnvironmentSpec",
    "Interpreter",
    "PipConfig",
    "ResolvedEnvironment",
    "build",
    "curated_environment",
    "environment_from_dict",
    "find_python",
    "is_curated_reference",
    "list_built",
    "load_environment_yaml",
    "prune",
    "read_pip_config",
    "resolve",
    "spec_from_reference",
]
