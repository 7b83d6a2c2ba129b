"""Which back end a workspace profile names: the one place that builds a :class:`Workspace`.

The composition root of the service layer: the CLI and the dashboard call
:func:`open_workspace`, and only this module knows the back ends' classes (imported on
demand, so that opening the local workspace never loads the Azure client).
"""

from __future__ import annotations

from typing import Any

from .api.workspace import Workspace
from .profiles import adhoc_profile, get_profile


def open_workspace(
    name: str | None = None, *, provider: str | None = None, **overrides: Any
) -> Workspace:
    """The Workspace behind a profile. ``overrides`` (e.g. from CLI flags) win over the file.

    With ``provider`` and no ``name``: an ad-hoc workspace of that provider, configured by
    ``overrides`` alone (what they leave out an azureml workspace reads from config.json).
    """
    profile = adhoc_profile(provider) if provider and name is None else get_profile(name)
    settings = {**profile.settings, **{k: v for k, v in overrides.items() if v is not None}}
    if profile.provider == "azureml":
        from .azureml.workspace import AzureMLWorkspace

        return AzureMLWorkspace.from_settings(profile.name, settings)
    from .local.client import LocalWorkspace

    return LocalWorkspace(profile.name, **settings)
