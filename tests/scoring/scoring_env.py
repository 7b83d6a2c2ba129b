"""The Python environment the scoring tests run scripts in: Azure's inference server and the
official examples' packages, built once (pip, from the configured index) into a cache dir
keyed by the requirement list, and reused by later sessions.

Never skipped: when it cannot be built, the test fails with pip's own message.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: What the examples' environments ask for (their conda files, cli/endpoints/online/...),
#: pinned to one set that loads every example's model: inference-schema's iris.pkl was
#: pickled by scikit-learn 1.2.2 (its env.yml pins it), which needs numpy < 2.
REQUIREMENTS = (
    "azureml-inference-server-http==1.5.1",
    "inference-schema==1.8",
    "scikit-learn==1.2.2",
    "numpy==1.26.4",
    "scipy==1.11.4",
    "pandas==2.2.3",
    "joblib==1.3.2",
    "pillow==11.2.1",
    # the MLflow no-code script (services/scoring/mlflow_ncd/score.py) loads the ncd model
    "mlflow-skinny==3.18.0",
)

#: scikit-learn 1.2.2 has wheels for CPython 3.8 to 3.11 only
PYTHONS = ("python3.11", "python3.10", "python3.9")


def _base_python() -> str:
    if (3, 9) <= sys.version_info[:2] <= (3, 11):
        return getattr(sys, "_base_executable", sys.executable)
    for name in PYTHONS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"the scoring test environment pins scikit-learn 1.2.2 (the examples' models need it), "
        f"which has wheels for Python 3.9-3.11 only; this is {sys.version.split()[0]} and none "
        f"of {', '.join(PYTHONS)} is on PATH: install one of them",
        pytrace=False,
    )


def cache_root() -> Path:
    base = os.environ.get("MODELDECK_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "modeldeck-tests"
    )
    return Path(base)


def scoring_python() -> Path:
    """The environment's python, built on first use (one builder at a time, others wait)."""
    base = _base_python()
    key = hashlib.sha256("\n".join((base, *REQUIREMENTS)).encode()).hexdigest()[:16]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"scoring-env-{key}"
    python = target / "bin" / "python"
    with open(root / f"scoring-env-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return python
        building = root / f"scoring-env-{key}.building"
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        _run([base, "-m", "venv", str(building)], "creating the venv")
        # a venv's scripts name their own path: build at the final path
        building.rename(target)
        try:
            _run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "-q",
                    *REQUIREMENTS,
                ],
                "pip install " + " ".join(REQUIREMENTS),
            )
        except BaseException:
            with contextlib.suppress(OSError):
                shutil.rmtree(target)
            raise
        (target / ".complete").write_text("\n".join(REQUIREMENTS) + "\n")
    return python


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        pytest.fail(
            f"cannot build the scoring test environment ({what}), exit {proc.returncode}:\n{tail}",
            pytrace=False,
        )
