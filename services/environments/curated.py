"""Azure ML curated environments the official examples name, as package sets.

A curated environment is an image Azure builds from a conda file in Azure/azureml-assets
(``assets/training/general/environments/<name>/context/conda_dependencies.yaml``). Locally
modeldeck builds the part of that file a scoring script uses: the interpreter and the data
and model libraries (not azureml-core, telemetry, tensorboard or the debugging tools, which
a scoring script does not import). The Kubernetes side uses :attr:`CuratedEnvironment.image`.

Names are matched without case, with or without the ``AzureML-`` prefix, in every form the
examples write: ``azureml://registries/azureml/environments/sklearn-1.5/labels/latest``,
``azureml://registries/azureml/environments/sklearn-1.5/versions/12``,
``azureml:AzureML-sklearn-1.5@latest``, ``azureml:AzureML-sklearn-1.5:3``,
``AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..api.errors import InvalidInput

_ASSETS = "https://github.com/Azure/azureml-assets/blob/main/assets/training/general/environments"


@dataclass(frozen=True)
class CuratedEnvironment:
    name: str
    python: str
    requirements: tuple[str, ...]
    image: str
    source: str


CURATED: dict[str, CuratedEnvironment] = {
    env.name: env
    for env in (
        # used by cli/endpoints/online/managed/sample/*-with-curated-env.yml
        CuratedEnvironment(
            "sklearn-1.5",
            "3.10",
            (
                "scikit-learn~=1.5.0",
                "joblib~=1.2.0",
                "pandas~=1.5.3",
                "scipy~=1.10.0",
                "numpy~=1.22.0",
                "inference-schema",
            ),
            "mcr.microsoft.com/azureml/curated/sklearn-1.5:latest",
            f"{_ASSETS}/sklearn-1.5/context/conda_dependencies.yaml",
        ),
        CuratedEnvironment(
            "sklearn-1.0",
            "3.9",
            (
                "scikit-learn~=1.0.0",
                "joblib~=1.2.0",
                "pandas~=1.3.0",
                "scipy~=1.10.0",
                "numpy~=1.22.0",
                "inference-schema",
            ),
            "mcr.microsoft.com/azureml/curated/sklearn-1.0:latest",
            f"{_ASSETS}/sklearn-1.0/context/conda_dependencies.yaml",
        ),
        # the older name of sklearn-1.0, still in the docs' examples
        CuratedEnvironment(
            "sklearn-1.0-ubuntu20.04-py38-cpu",
            "3.8",
            (
                "scikit-learn~=1.0.0",
                "joblib~=1.2.0",
                "pandas~=1.3.0",
                "scipy~=1.7.0",
                "numpy~=1.21.0",
                "inference-schema",
            ),
            "mcr.microsoft.com/azureml/sklearn-1.0-ubuntu20.04-py38-cpu-inference:latest",
            f"{_ASSETS}/sklearn-1.0/context/conda_dependencies.yaml",
        ),
        CuratedEnvironment(
            "lightgbm-3.3",
            "3.10",
            (
                "lightgbm>=4.6.0",
                "scikit-learn~=1.5.1",
                "xgboost~=1.7.6",
                "pandas~=1.5.3",
                "scipy~=1.10.0",
                "numpy~=1.22.0",
                "inference-schema",
            ),
            "mcr.microsoft.com/azureml/curated/lightgbm-3.3:latest",
            f"{_ASSETS}/lightgbm-3.3/context/conda_dependencies.yaml",
        ),
    )
}

_REGISTRY = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/environments/(?P<name>[^/]+)"
    r"(?:/(?:labels|versions)/(?P<which>[^/]+))?/?$",
    re.IGNORECASE,
)
_AZUREML = re.compile(r"^(?:azureml:)?AzureML-(?P<name>[^:@/]+)(?:[:@](?P<which>[^:@/]+))?$", re.I)


def is_curated_reference(ref: str) -> bool:
    """True for a reference that names a curated environment (known or not)."""
    text = ref.strip()
    return bool(_REGISTRY.match(text) or _AZUREML.match(text))


def curated_environment(ref: str, *, field: str = "environment") -> CuratedEnvironment:
    """The curated environment ``ref`` names; InvalidInput if modeldeck does not know it."""
    text = ref.strip()
    m = _REGISTRY.match(text)
    if m and m.group("registry").lower() != "azureml":
        raise InvalidInput(
            field,
            ref,
            f"names registry '{m.group('registry')}'; only the curated registry 'azureml' "
            "is known locally",
            "register the environment here (modeldeck environment create -f env.yml) and "
            "name it azureml:NAME:VERSION",
        )
    m = m or _AZUREML.match(text)
    if not m:
        raise InvalidInput(
            field,
            ref,
            "is not a curated environment reference",
            "write azureml://registries/azureml/environments/NAME/labels/latest or "
            "azureml:AzureML-NAME@latest",
        )
    name = m.group("name").lower()
    if name.startswith("azureml-"):
        name = name[len("azureml-") :]
    env = CURATED.get(name)
    if env is None:
        raise InvalidInput(
            field,
            ref,
            f"names the curated environment '{name}', which modeldeck cannot build locally "
            f"(known: {', '.join(sorted(CURATED))})",
            "use one of those, or give the environment as a conda file "
            "(environment: {image: ..., conda_file: conda.yaml}) listing the packages it needs",
        )
    return env
