"""Where this machine already says which Azure ML workspace is meant, as az ml reads it.

- ``AZURE_SUBSCRIPTION_ID``, else the signed-in default subscription of the Azure CLI
  (``azureProfile.json`` in ``$AZURE_CONFIG_DIR``, default ``~/.azure``: the one
  ``az account show`` prints, ``isDefault: true``);
- ``az configure --defaults group=RG workspace=WS``: the ``[defaults]`` section of the
  Azure CLI's ``config`` file (az ml's ``-g`` and ``-w`` take them: azext_mlv2
  ``_common_params.add_common_params``, ``configured_default="workspace"``);
- an Azure ML ``config.json`` (downloaded from the studio) in the folder, ``.azureml/`` or a
  parent's.

Only read, never written; none of them holds a secret.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path


def az_config_dir() -> Path:
    return Path(os.environ.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")


def default_subscription() -> str | None:
    """``AZURE_SUBSCRIPTION_ID``, else the Azure CLI's default subscription, if any."""
    if env := os.environ.get("AZURE_SUBSCRIPTION_ID"):
        return env
    try:  # the Azure CLI writes it with a byte-order mark
        data = json.loads((az_config_dir() / "azureProfile.json").read_text("utf-8-sig"))
    except (OSError, ValueError):
        return None
    subs = data.get("subscriptions") if isinstance(data, dict) else None
    for sub in subs if isinstance(subs, list) else []:
        if isinstance(sub, dict) and sub.get("isDefault") and sub.get("id"):
            return str(sub["id"])
    return None


def configured_defaults() -> dict[str, str]:
    """``az configure --defaults``: ``resource_group`` and ``workspace_name`` when set."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(az_config_dir() / "config", encoding="utf-8")
    except (OSError, configparser.Error):
        return {}
    if not parser.has_section("defaults"):
        return {}
    section = parser["defaults"]
    out = {
        "resource_group": section.get("group", ""),
        "workspace_name": section.get("workspace", ""),
    }
    return {k: v.strip() for k, v in out.items() if v and v.strip()}


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


def subscription_known() -> bool:
    """Whether an Azure ML workspace named by -g/--workspace-name alone can be found: a
    subscription is given by the environment, the Azure CLI or a config.json."""
    return default_subscription() is not None or find_config_json() is not None
