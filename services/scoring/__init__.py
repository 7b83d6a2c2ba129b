"""The scoring host: Azure ML's entry-script contract, for local replicas and pods alike.

``host.py`` is run as a file by the deployment's own Python (standard library only).
"""

from __future__ import annotations

from pathlib import Path

#: the file to run: ``<python> HOST ...``
HOST = Path(__file__).with_name("host.py")

#: the scoring script MLflow no-code deployments are served with (a ``mlflow_model`` with no
#: ``code_configuration``; Azure ML generates its own): ``MLFLOW_CODE / MLFLOW_SCRIPT``
MLFLOW_CODE = Path(__file__).with_name("mlflow_ncd")
MLFLOW_SCRIPT = "score.py"


def is_mlflow_no_code(code: str | None) -> bool:
    """Whether a deployment's ``code_configuration.code`` is the no-code MLflow script's
    folder (the deployment had none)."""
    if not code:
        return False
    try:
        return Path(code).resolve() == MLFLOW_CODE.resolve()
    except OSError:
        return False
