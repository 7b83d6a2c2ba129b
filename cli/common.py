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
    """The profile the command runs against and the overrides to pass to it.

    ``-w/--workspace NAME``: the profile NAME, else the azureml profile whose
    ``workspace_name`` is NAME (az's ``-w`` is ``--workspace-name``), else, when an Azure
    subscription is known (see :func:`azure_flags_profile`), that Azure ML workspace.

    az's ``-g/--resource-group``, ``--workspace-name`` and ``--subscription`` override an
    azureml profile's settings. On a local profile: when they name an Azure ML workspace
    that can be found (:func:`azure_flags_profile`) they select it, as az ml does; else the
    command runs on the local workspace and a warning says they were ignored.
    """
    from ..services import profiles

    if getattr(args, "local", False):
        return local_profile(args), {}
    wanted = getattr(args, "workspace", None)
    given = {
        key: getattr(args, flag)
        for flag, key in _AZURE_FLAGS.items()
        if getattr(args, flag, None) is not None
    }
    try:
        profile = profiles.get_profile(wanted)
    except NotFound:
        match = [p for p in profiles.list_profiles() if p.settings.get("workspace_name") == wanted]
        if len(match) == 1:
            profile = match[0]
        else:
            named = {"workspace_name": wanted, **given}
            found = azure_flags_profile(args, named)
            if found is not None:
                return found
            default = profiles.get_profile(None)
            if default.provider == "local" and not given:
                raise  # a mistyped profile name stays an error
            # an az script's `-g RG -w NAME`: the default azureml profile's subscription,
            # else ignored on the local workspace
            return _ignored(args, default, named)
    if profile.provider != "local" or not given:
        return profile, given
    if given == {"workspace_name": profile.name}:  # it names this local workspace itself
        return profile, {}
    if wanted is None:  # the flags alone name an Azure ML workspace, as in az ml
        found = azure_flags_profile(args, given)
        if found is not None:
            return found
    return _ignored(args, profile, given)


def azure_flags_profile(
    args: argparse.Namespace, given: dict[str, Any]
) -> tuple[Any, dict[str, Any]] | None:
    """The Azure ML workspace that az's flags name, if it can be found: the one azureml
    profile whose settings agree with every flag given, else (when an Azure subscription
    is known: --subscription, AZURE_SUBSCRIPTION_ID, the Azure CLI's signed-in
    subscription, or a config.json) an ad-hoc workspace of the flags; else None."""
    from ..services import azdefaults, profiles

    agree = [
        p
        for p in profiles.list_profiles()
        if p.provider == "azureml" and all(p.settings.get(k) == v for k, v in given.items())
    ]
    if len(agree) == 1:
        return agree[0], given
    if "subscription_id" in given or azdefaults.subscription_known():
        return profiles.adhoc_profile("azureml"), given
    return None


def _ignored(args: argparse.Namespace, profile: Any, given: dict[str, Any]) -> tuple[Any, dict]:
    """A local profile keeps the command; the Azure flags are ignored, and said so."""
    flags = {"resource_group": "-g", "workspace_name": "--workspace-name/-w"}
    names = ", ".join(f"{flags.get(k, '--subscription')} {v}" for k, v in given.items())
    if profile.provider == "local":
        warn(
            args,
            f"{names} ignored: no Azure ML profile matches and no Azure subscription is known "
            "(--subscription, AZURE_SUBSCRIPTION_ID, az login, config.json); running on the "
            f"local workspace '{profile.name}'",
        )
        return profile, {}
    return profile, given


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


def check_show_label(args: argparse.Namespace) -> None:
    """az ml's ``--label`` on a model's or an environment's ``show``: ``latest`` only, and not
    with ``--version`` (azure-ai-ml's ModelOperations.get / EnvironmentOperations.get refuse
    both: "Cannot specify both version and label.")."""
    if args.version is not None and args.label is not None:
        raise InvalidInput(
            "--label", args.label, "cannot be given with --version", "give one of them"
        )
    _latest_only(args)


def check_one_version(args: argparse.Namespace, rule: str) -> None:
    """az ml's archive/restore of a model or an environment version: ``-v VERSION`` or
    ``--label latest``, exactly one of them (``rule`` says so when not)."""
    if (args.version is None) == (args.label is None):
        raise InvalidInput("--version", args.version, rule, "pass -v 1")
    _latest_only(args)


def _latest_only(args: argparse.Namespace) -> None:
    if args.label is not None and args.label != "latest":
        raise InvalidInput("--label", args.label, "must be latest", "write --label latest")


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
