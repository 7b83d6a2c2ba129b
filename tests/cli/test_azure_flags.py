"""az's -g/--resource-group, --workspace-name, --subscription and -w on a machine whose
default profile is local: they select the Azure ML workspace they name when it can be
found (a matching azureml profile, or a known subscription: --subscription,
AZURE_SUBSCRIPTION_ID, the Azure CLI's signed-in one, a config.json), else the command
runs on the local workspace with a warning saying they were ignored (it used to switch
to Azure ML and fail on the missing subscription)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
from modeldeck.cli import common
from modeldeck.services import azdefaults

from .conftest import Cli


def ns(**kw: object) -> argparse.Namespace:
    base = {"workspace": None, "resource_group": None, "workspace_name": None}
    return argparse.Namespace(**{**base, "subscription": None, **kw})


@pytest.fixture
def nothing_known(md_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Azure subscription anywhere: an empty Azure CLI config dir, no env, no config.json."""
    az = md_home / "azure-cli"
    az.mkdir()
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(az))
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    monkeypatch.chdir(md_home)
    return az


def test_flags_without_a_subscription_run_locally_and_say_so(
    nothing_known: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile, overrides = common.resolve_profile(ns(resource_group="rg", workspace_name="ws"))
    assert (profile.provider, overrides) == ("local", {})
    err = capsys.readouterr().err
    assert err.startswith("WARNING: -g rg, --workspace-name/-w ws ignored"), err
    assert "local workspace 'local'" in err and err.count("\n") == 1
    # az's `-g RG -w NAME` (-w is --workspace-name in az): the same
    profile, overrides = common.resolve_profile(ns(workspace="ws", resource_group="rg"))
    assert (profile.provider, overrides) == ("local", {})
    assert "--workspace-name/-w ws" in capsys.readouterr().err
    # --only-show-errors keeps it quiet
    common.resolve_profile(ns(resource_group="rg", only_show_errors=True))
    assert capsys.readouterr().err == ""


def test_a_known_subscription_selects_the_azure_ml_workspace(
    nothing_known: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile, overrides = common.resolve_profile(
        ns(resource_group="rg", workspace_name="ws", subscription="sub")
    )
    assert profile.provider == "azureml"
    assert overrides == {"resource_group": "rg", "workspace_name": "ws", "subscription_id": "sub"}

    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "env-sub")
    profile, overrides = common.resolve_profile(ns(workspace="ws", resource_group="rg"))
    assert profile.provider == "azureml" and overrides == {
        "workspace_name": "ws",
        "resource_group": "rg",
    }


def test_the_azure_cli_signed_in_subscription_and_defaults(nothing_known: Path) -> None:
    """``az login`` + ``az configure --defaults group=rg workspace=ws``: as az ml, the
    flags find the workspace, and what they leave out comes from az's defaults."""
    (nothing_known / "azureProfile.json").write_text(
        json.dumps(
            {
                "installationId": "x",
                "subscriptions": [
                    {"id": "other", "isDefault": False, "name": "b"},
                    {"id": "az-sub", "isDefault": True, "name": "a"},
                ],
            }
        ),
        encoding="utf-8-sig",  # as the Azure CLI writes it
    )
    (nothing_known / "config").write_text("[defaults]\ngroup = az-rg\nworkspace = az-ws\n")
    assert azdefaults.default_subscription() == "az-sub"
    assert azdefaults.configured_defaults() == {
        "resource_group": "az-rg",
        "workspace_name": "az-ws",
    }
    profile, overrides = common.resolve_profile(ns(workspace_name="ws"))
    assert profile.provider == "azureml" and overrides == {"workspace_name": "ws"}
    from modeldeck.services.azureml.settings import resolve_settings

    settings = resolve_settings(overrides)
    assert (
        settings["subscription_id"],
        settings["resource_group"],
        settings["workspace_name"],
    ) == (
        "az-sub",
        "az-rg",
        "ws",
    )


def test_a_mistyped_profile_stays_an_error(nothing_known: Path) -> None:
    from modeldeck.services.api.errors import NotFound

    with pytest.raises(NotFound):
        common.resolve_profile(ns(workspace="prdo"))


@pytest.mark.e2e
def test_an_az_script_with_g_and_workspace_name_runs_locally(cli: Cli, tmp_path: Path) -> None:
    az = tmp_path / "azure-cli"
    az.mkdir()
    cli.env.update(AZURE_CONFIG_DIR=str(az))
    cli.env.pop("AZURE_SUBSCRIPTION_ID", None)
    r = cli("online-endpoint list -g my-rg --workspace-name my-ws -o json")
    assert r.json() == [], r
    assert "-g my-rg, --workspace-name/-w my-ws ignored" in r.err, r


def test_the_local_workspace_named_by_its_own_name_is_no_warning(
    nothing_known: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``workspace show -n local`` / ``--workspace-name local`` name the local workspace
    itself (workspace show printed it after "--workspace-name/-w local ignored"): no
    warning; with -g the pair still reads as az's and is said to be ignored."""
    profile, overrides = common.resolve_profile(ns(workspace_name="local"))
    assert (profile.name, overrides) == ("local", {})
    assert capsys.readouterr().err == ""
    common.resolve_profile(ns(workspace_name="local", resource_group="rg"))
    assert "ignored" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chowns to uid 65534")
def test_files_another_user_could_have_written_are_not_read(
    nothing_known: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a shared host a config.json another user left in a parent folder (``/tmp``), or
    an Azure CLI config dir file someone else owns or anyone may write, does not pick the
    subscription and workspace this user's commands go to: the flags stay local."""
    shared = tmp_path / "shared"
    (shared / "work").mkdir(parents=True)
    planted = shared / "config.json"
    planted.write_text(
        json.dumps({"subscription_id": "theirs", "resource_group": "rg", "workspace_name": "w"})
    )
    os.chown(planted, 65534, 65534)
    monkeypatch.chdir(shared / "work")
    assert azdefaults.find_config_json() is None
    profile, _ = common.resolve_profile(ns(resource_group="rg", workspace_name="ws"))
    assert profile.provider == "local"
    os.chown(planted, os.getuid(), os.getgid())  # the user's own: taken
    assert azdefaults.find_config_json() == planted
    planted.chmod(0o666)  # anyone may write it: not
    assert azdefaults.find_config_json() is None

    profile_json = nothing_known / "azureProfile.json"
    profile_json.write_text(json.dumps({"subscriptions": [{"id": "theirs", "isDefault": True}]}))
    config = nothing_known / "config"
    config.write_text("[defaults]\ngroup = their-rg\nworkspace = their-ws\n")
    for path in (profile_json, config):
        os.chown(path, 65534, 65534)
    assert azdefaults.default_subscription() is None
    assert azdefaults.configured_defaults() == {}
    for path in (profile_json, config):
        os.chown(path, os.getuid(), os.getgid())
    assert azdefaults.default_subscription() == "theirs"
    assert azdefaults.configured_defaults() == {
        "resource_group": "their-rg",
        "workspace_name": "their-ws",
    }
    os.mkfifo(nothing_known / "fifo")  # a FIFO in its place is not waited on
    assert azdefaults.read_own(nothing_known / "fifo") is None
