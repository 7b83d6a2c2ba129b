"""Where an Azure ML workspace is: profile settings, else the ``config.json`` the Azure
ML studio downloads (in this folder or ``.azureml/``, or a parent's), else what the Azure
CLI says (``az configure --defaults``, its signed-in subscription: ..azdefaults)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..api.errors import InvalidInput
from ..azdefaults import configured_defaults, default_subscription, find_config_json


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
    # as az ml: `az configure --defaults group= workspace=`, the az CLI's subscription
    for k, v in {**configured_defaults(), "subscription_id": default_subscription()}.items():
        if v and not out.get(k):
            out[k] = v
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
