"""Why a deployment's provisioning failed, kept across processes.

ARM keeps the reason only in the long operation that failed: a later GET of the deployment
says ``provisioningState: Failed`` and nothing more. The process that followed the
operation writes ARM's words here, so the dashboard or another CLI command started later
shows them too. One small JSON file under the data dir (0600 in a 0700 folder), keyed by
the deployment's ARM id; a success or a delete clears the entry.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from .. import paths

MAX_ENTRIES = 200


def _file() -> Path:
    return paths.data_dir() / "azureml" / "deployment-failures.json"


def _read() -> dict[str, dict[str, object]]:
    try:
        data = json.loads(_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load() -> dict[str, str]:
    """deployment ARM id (lower case) -> the message it failed with."""
    return {k: str(v.get("message", "")) for k, v in _read().items() if isinstance(v, dict)}


def _key(deployment_id: str) -> str:
    return deployment_id.lower()


def record(deployment_id: str, message: str | None) -> None:
    """Keep ``message`` for this deployment; ``None`` forgets it (success, delete)."""
    data = _read()
    key = _key(deployment_id)
    if message is None:
        if key not in data:
            return
        data.pop(key)
    else:
        data[key] = {"message": message, "at": time.time()}
        if len(data) > MAX_ENTRIES:
            oldest = sorted(data, key=lambda k: float(data[k].get("at", 0)))  # type: ignore[arg-type]
            for k in oldest[: len(data) - MAX_ENTRIES]:
                data.pop(k)
    # a read-only home: the message stays in this process only
    with contextlib.suppress(OSError):
        paths.write_private(_file(), json.dumps(data, indent=1).encode())


def lookup(known: dict[str, str], deployment_id: str) -> str | None:
    return known.get(_key(deployment_id))
