"""Issue 12, as a user runs it: the azureml-examples managed endpoint YAML (no ``compute``)
and ``online-endpoint create -n NAME`` with no file create managed endpoints on the local
workspace (were refused: ``invalid compute '': is required``), shown as az ml shows them;
a profile meant for Kubernetes (``managed_capacity = false``) names the clusters instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import Cli

pytestmark = pytest.mark.e2e

#: cli/endpoints/online/managed/sample/endpoint.yml of Azure/azureml-examples
MANAGED_ENDPOINT = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json
name: my-endpoint
auth_mode: key
"""


def test_managed_endpoints_are_created_and_shown_as_az_shows_them(cli: Cli, work: Path) -> None:
    (work / "managed.yml").write_text(MANAGED_ENDPOINT)
    cli("online-endpoint create --name ep-file -f managed.yml")
    cli("online-endpoint create -n ep-nofile")
    for name in ("ep-file", "ep-nofile"):
        # az ml prints no compute for a managed endpoint: a script's --query gets nothing
        assert cli(f"online-endpoint show -n {name} --query compute -o tsv").out.strip() == ""
        assert cli(f"online-endpoint show -n {name} --query kind -o tsv").out.strip() == "Managed"
        where = cli(f"online-endpoint show -n {name} --query managed_capacity -o tsv")
        assert where.out.strip() == "managed"
    assert "managed" in cli("compute list --query [].name -o tsv").out.split()
    refused = cli("compute delete --name managed --yes", ok=False)
    assert refused.code == 2 and "managed capacity" in refused.err, refused
    refused = cli("compute create --name managed", ok=False)
    assert refused.code == 2 and "managed capacity" in refused.err, refused


def test_a_kubernetes_profile_says_which_cluster_to_name(cli: Cli, work: Path) -> None:
    config = cli.home / "config"
    config.mkdir(mode=0o700, parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        '[workspaces.local]\nprovider = "local"\nmanaged_capacity = false\n'
    )
    os.chmod(config / "config.toml", 0o600)
    cli("cluster create --name myaks")
    (work / "managed.yml").write_text(MANAGED_ENDPOINT)
    refused = cli("online-endpoint create --name k8s-ep -f managed.yml", ok=False)
    assert refused.code == 2, refused
    assert "managed_capacity = false" in refused.err and "myaks" in refused.err, refused
    assert "--set compute=myaks" in refused.err, refused
    # the fix it names works
    cli("online-endpoint create --name k8s-ep -f managed.yml --set compute=myaks")
    assert cli("online-endpoint show -n k8s-ep --query compute -o tsv").out.strip() == "myaks"


def test_an_ignored_environment_image_names_the_managed_capacity(cli: Cli, work: Path) -> None:
    """The warning said "ignored on local pools" for a managed endpoint too, whose user made
    no pool: it names the managed capacity there (a named pool keeps its words: test_e2e)."""
    cli("model create --name sklearn-demo --path ./model")
    cli("online-endpoint create -n ep-managed")
    r = cli("online-deployment create --name blue --endpoint ep-managed -f blue.yml --no-wait")
    assert "environment image" in r.err and "is ignored on the managed capacity" in r.err, r
    assert "local pools" not in r.err, r
