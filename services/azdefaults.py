"""Where this machine already says which Azure ML workspace is meant, as az ml reads it.

- ``AZURE_SUBSCRIPTION_ID``, else the signed-in default subscription of the Azure CLI
  (``azureProfile.json`` in ``$AZURE_CONFIG_DIR``, default ``~/.azure``: the one
  ``az account show`` prints, ``isDefault: true``);
- ``az configure --defaults group=RG workspace=WS``: the ``[defaults]`` section of the
  Azure CLI's ``config`` file (az ml's ``-g`` and ``-w`` take them: azext_mlv2
  ``_common_params.add_common_params``, ``configured_default="workspace"``);
- an Azure ML ``config.json`` (downloaded from the studio) in the folder, ``.azureml/`` or a
  parent's.

Only read, never written; none of them holds a secret. A file another user could have
written is not read (its owner neither this user nor root, or writable by others: on a
shared host a ``config.json`` left in ``/tmp`` or a parent folder would otherwise pick the
subscription and workspace this user's commands and credentials go to).
"""

from __future__ import annotations

import configparser
import json
import os
import stat
from pathlib import Path


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


def read_own(path: Path, encoding: str = "utf-8") -> str | None:
    """The text of ``path`` if this user (or root) owns it and no other user may write it,
    checked on the file opened (a symlink is followed, its target checked; a FIFO is not
    waited on); else None."""
    try:
        with open(path, encoding=encoding, opener=_open_nonblocking) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            if st.st_uid not in (os.getuid(), 0) or st.st_mode & 0o002:
                return None
            return f.read()
    except (OSError, ValueError):
        return None


def az_config_dir() -> Path:
    return Path(os.environ.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")


def default_subscription() -> str | None:
    """``AZURE_SUBSCRIPTION_ID``, else the Azure CLI's default subscription, if any."""
    if env := os.environ.get("AZURE_SUBSCRIPTION_ID"):
        return env
    # the Azure CLI writes it with a byte-order mark
    text = read_own(az_config_dir() / "azureProfile.json", "utf-8-sig")
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    subs = data.get("subscriptions") if isinstance(data, dict) else None
    for sub in subs if isinstance(subs, list) else []:
        if isinstance(sub, dict) and sub.get("isDefault") and sub.get("id"):
            return str(sub["id"])
    return None


def configured_defaults() -> dict[str, str]:
    """``az configure --defaults``: ``resource_group`` and ``workspace_name`` when set."""
    parser = configparser.ConfigParser(interpolation=None)
    text = read_own(az_config_dir() / "config")
    try:
        parser.read_string(text or "")
    except configparser.Error:
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
                text = read_own(candidate)
                try:
                    data = json.loads(text) if text is not None else None
                except ValueError:
                    continue
                if isinstance(data, dict) and "subscription_id" in data:
                    return candidate
    return None


def subscription_known() -> bool:
    """Whether an Azure ML workspace named by -g/--workspace-name alone can be found: a
    subscription is given by the environment, the Azure CLI or a config.json."""
    return default_subscription() is not None or find_config_json() is not None
