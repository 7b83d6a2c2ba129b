"""What the commands share: the workspace from the flags, warnings, confirmation."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..services.api.errors import InvalidInput, NotFound
from ..services.api.workspace import Workspace

_AZURE_FLAGS = {
    "resource_group": "resource_group",
    "workspace_name": "workspace_name",
    "subscription": "subscription_id",
}


def resolve_profile(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The profile of ``--workspace`` and the overrides to pass to it.

    az's -g/--workspace-name/--subscription go to an azureml profile (a local profile ignores
    them). An az script's ``-w WORKSPACE_NAME`` finds the azureml profile of that name when no
    profile is called so.
    """
    from ..services import profiles

    if getattr(args, "local", False):
        return local_profile(args), {}
    wanted = getattr(args, "workspace", None)
    try:
        profile = profiles.get_profile(wanted)
    except NotFound:
        match = [p for p in profiles.list_profiles() if p.settings.get("workspace_name") == wanted]
        if len(match) != 1:
            raise
        profile = match[0]
    given = {
        key: getattr(args, flag)
        for flag, key in _AZURE_FLAGS.items()
        if getattr(args, flag, None) is not None
    }
    if profile.provider == "local" and given and wanted is None:
        # az ml's way: the flags alone name an Azure ML workspace, no profile needed
        profile = profiles.adhoc_profile("azureml")
    return profile, (given if profile.provider != "local" else {})


def local_profile(args: argparse.Namespace) -> Any:
    """``--local``: the local workspace whatever the current profile (az ml's local
    endpoints): the profile -w names if it is a local one, else the default if it is local,
    else the first local profile."""
    from ..services import profiles

    if getattr(args, "no_wait", False):  # az ml refuses the pair with this message
        raise InvalidInput(
            "--local",
            True,
            '"no_wait" and "local" options are mutually exclusive',
            "drop --no-wait: a --local command waits for its operation",
            message='"no_wait" and "local" options are mutually exclusive. '
            "Set only one option and try again.",
        )
    local = [p for p in profiles.list_profiles() if p.provider == "local"]
    for name in (getattr(args, "workspace", None), profiles.default_profile_name()):
        for p in local:
            if p.name == name:
                return p
    return local[0]  # list_profiles() always holds one


def open_ws(args: argparse.Namespace) -> Workspace:
    """The workspace the command runs against."""
    from ..services import profiles
    from ..services.backends import open_workspace

    profile, overrides = resolve_profile(args)
    if profile == profiles.adhoc_profile(profile.provider):  # named by flags alone
        return open_workspace(provider=profile.provider, **overrides)
    return open_workspace(profile.name, **overrides)


def warn(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "only_show_errors", False):
        sys.stderr.write(f"WARNING: {message}\n")
        sys.stderr.flush()


def warner(args: argparse.Namespace) -> Any:
    return lambda message: warn(args, message)


def confirm(args: argparse.Namespace, question: str) -> None:
    """Ask on a TTY (y/n); refuse on a non-TTY unless --yes. Raises when not confirmed."""
    if getattr(args, "yes", False):
        return
    if not sys.stdin.isatty():
        raise InvalidInput(
            "--yes",
            False,
            "confirmation is needed and the input is not a terminal",
            "pass --yes (-y) to confirm in a script",
            message=f"{question} Not confirmed: the input is not a terminal, so nothing was asked.",
        )
    sys.stderr.write(f"{question}\nAre you sure you want to perform this operation? (y/n): ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise InvalidInput(
            "confirmation",
            answer,
            "the operation was not confirmed",
            "answer y, or pass --yes",
            message="Operation cancelled: nothing was changed.",
        )
