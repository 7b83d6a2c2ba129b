"""Workspace profiles: named entries in ``config.toml`` under the config dir.

```toml
default = "local"

[workspaces.local]
provider = "local"

[workspaces.prod]
provider = "azureml"
subscription_id = "..."
resource_group = "..."
workspace_name = "..."
rollout_webhook = "https://hooks.example.com/..."   # optional, any profile
```

With no config at all, the local workspace is the default. ``rollout_webhook``: where a
progressive rollout started on this workspace posts its steps and verdict when none is
given (``--webhook``, the YAML's ``webhook:``); see :func:`rollout_webhook`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .api.errors import InvalidInput, NotFound

PROVIDERS = ("local", "azureml")


@dataclass(frozen=True)
class Profile:
    name: str
    provider: str = "local"
    settings: dict[str, Any] = field(default_factory=dict)


def config_file() -> Path:
    return paths.config_dir() / "config.toml"


def check_config() -> None:
    """Refuse a config dir or ``config.toml`` that another user can write (or a directory
    above them that lets one swap them): they say which workspaces and gateway address
    are used, so such a file is never read."""
    directory = paths.config_dir()
    paths.check_tree(directory)
    paths.check_private(config_file(), "config file")


def load_config() -> dict[str, Any]:
    path = config_file()
    check_config()
    if not path.exists():
        return {}
    import tomllib  # only with a file to read: a command without one starts faster

    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(
            "config", str(path), f"is not valid TOML ({exc})", "fix the file or move it away"
        ) from None


def list_profiles() -> list[Profile]:
    cfg = load_config()
    entries: dict[str, Any] = dict(cfg.get("workspaces") or {})
    profiles = [
        Profile(n, str(v.get("provider", "local")), {k: x for k, x in v.items() if k != "provider"})
        for n, v in entries.items()
    ]
    if not any(p.provider == "local" for p in profiles):
        profiles.insert(0, Profile("local"))
    for p in profiles:
        if p.provider not in PROVIDERS:
            raise InvalidInput(
                f"workspaces.{p.name}.provider",
                p.provider,
                "must be local or azureml",
                f"edit {config_file()}",
            )
    return profiles


def default_profile_name() -> str:
    return os.environ.get("MODELDECK_WORKSPACE") or str(load_config().get("default", "local"))


def get_profile(name: str | None = None) -> Profile:
    wanted = name or default_profile_name()
    for p in list_profiles():
        if p.name == wanted:
            return p
    raise NotFound(
        "workspace",
        wanted,
        fix=f"add [workspaces.{wanted}] to {config_file()}, or use --workspace local",
    )


def adhoc_profile(provider: str) -> Profile:
    """A workspace named by flags alone, as ``az ml -g RG --workspace-name W`` names one."""
    if provider not in PROVIDERS:
        raise InvalidInput("provider", provider, "must be local or azureml")
    return Profile(provider, provider)


def rollout_webhook(name: str) -> str | None:
    """The ``rollout_webhook`` of the profile ``name`` (checked as a webhook URL; an error
    names the setting, its URL redacted), or None: not set, or a workspace named by flags
    alone (no profile)."""
    from .api.rollouts import webhook

    try:
        profile = get_profile(name)
    except NotFound:
        return None
    value = profile.settings.get("rollout_webhook")
    if value in (None, ""):
        return None
    try:
        return webhook(value, f"workspaces.{name}.rollout_webhook")
    except InvalidInput as exc:
        raise InvalidInput(
            exc.field, exc.value, exc.rule, f"edit {config_file()}: {exc.fix}"
        ) from None
