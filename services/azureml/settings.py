"""Where an Azure ML workspace is: profile settings, else the ``config.json`` the Azure
ML studio downloads (in this folder or ``.azureml/``, or a parent's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..api.errors import InvalidInput


def find_config_json(start: Path | None = None) -> Path | None:
    """An Azure ML ``config.json``: in the folder or ``.azureml/``, then each parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for candidate in (folder / "config.json", folder / ".azureml" / "config.json"):
            if candidate.is_file():
                try:
                    data = json.loads(candidate.read_text())
                except (OSError, ValueError):
                    continue
                if isinstance(data, dict) and "subscription_id" in data:
                    return candidate
    return None


def resolve_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with the workspace coordinates filled from config.json where missing."""
    out = dict(settings)
    if "subscription" in out and "subscription_id" not in out:
        out["subscription_id"] = out.pop("subscription")
    if "workspace" in out and "workspace_name" not in out:
        out["workspace_name"] = out.pop("workspace")
    keys = ("subscription_id", "resource_group", "workspace_name")
    if not all(out.get(k) for k in keys):
        path: Path | None = None
        if out.get("config_file"):
            path = Path(str(out["config_file"])).expanduser()
            if not path.is_file():
                raise InvalidInput(
                    "config_file",
                    str(path),
                    "does not exist",
                    "give the path of the config.json downloaded from the Azure ML studio",
                )
        else:
            path = find_config_json()
        if path is not None:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise InvalidInput(
                    "config_file",
                    str(path),
                    f"is not valid JSON ({exc})",
                    "download config.json again from the Azure ML studio",
                ) from None
            for k in keys:
                if not out.get(k) and data.get(k):
                    out[k] = str(data[k])
            out.setdefault("config_source", str(path))
    for k in keys:
        if not out.get(k):
            flag = "--" + {
                "subscription_id": "subscription",
                "workspace_name": "workspace-name",
            }.get(k, k.replace("_", "-"))
            raise InvalidInput(
                k,
                out.get(k),
                "is required for an Azure ML workspace",
                f"set {k} in the profile, pass {flag}, or put the workspace's config.json "
                "in this folder or .azureml/",
            )
    return out
