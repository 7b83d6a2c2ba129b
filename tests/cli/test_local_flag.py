"""az ml's ``--local`` (azext_mlv2 _online_endpoint_params / _online_deployment_params): the
command goes to the local workspace whatever the current profile, and a deployment created
or updated with ``--local`` is its endpoint's sole deployment and takes its traffic (az ml's
local endpoint routes to its only deployment), so ``invoke --local`` answers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import Cli

pytestmark = pytest.mark.e2e

# an Azure ML profile as the default, pointing at a port nothing listens on: any command
# that reached it would fail
CLOUD_DEFAULT = """\
default = "cloud"
[workspaces.cloud]
provider = "azureml"
subscription_id = "00000000-1111-2222-3333-444444444444"
resource_group = "rg"
workspace_name = "ws"
arm_endpoint = "http://127.0.0.1:9"
max_retries = 0
timeout = 2
"""


def _cloud_default(cli: Cli) -> None:
    config = cli.home / "config"
    config.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = config / "config.toml"
    path.write_text(CLOUD_DEFAULT)
    os.chmod(path, 0o600)


def test_local_flag_works_whatever_the_default_profile(cli: Cli, work: Path) -> None:
    _cloud_default(cli)
    cli("cluster create --name myaks -w local")
    cli("model create --name sklearn-demo --path ./model -w local")

    cli("online-endpoint create --local -n ep1 -f endpoint.yml")
    # as az ml's deploy-local-endpoint.sh: no --all-traffic, the sole deployment serves
    cli("online-deployment create --local -n blue --endpoint ep1 -f blue.yml")
    shown = cli("online-endpoint show -n ep1 --local -o json").json()
    assert shown["traffic"] == {"blue": 100}
    state = cli(
        "online-deployment show --local -n blue --endpoint ep1 --query provisioning_state -o tsv"
    )
    assert state.out.strip() == "Succeeded"
    answer = cli("online-endpoint invoke --local --name ep1 --request-file sample-request.json")
    assert answer.out.strip(), answer
    listed = cli("online-endpoint list --local --query [].name -o tsv").out.split()
    assert listed == ["ep1"]
    assert cli("online-deployment list --local -e ep1 --query [].name -o tsv").out.split() == [
        "blue"
    ]
    cli("online-deployment get-logs --local -n blue --endpoint ep1 --lines 5")

    # without --local the command goes to the default profile (Azure ML, unreachable here)
    assert cli("online-endpoint show -n ep1", ok=False).code != 0

    # an update with --local keeps the sole deployment serving
    cli('online-endpoint update --local -n ep1 --traffic "blue=0"')
    cli("online-deployment update --local -n blue -e ep1 --set instance_count=1")
    assert (
        cli("online-endpoint show --local -n ep1 --query traffic.blue -o tsv").out.strip() == "100"
    )

    # az ml refuses --local with --no-wait, with this message
    r = cli("online-endpoint delete --local -n ep1 --yes --no-wait", ok=False)
    assert r.code == 2 and '"no_wait" and "local" options are mutually exclusive' in r.err, r
    cli("online-endpoint delete --local --name ep1 --yes")
    assert cli("online-endpoint list --local -o tsv").out.strip() == ""


def test_local_takes_az_three_state_values() -> None:
    from modeldeck.cli.parser import build_parser

    for argv, want in (
        (["online-endpoint", "show", "-n", "e", "--local"], True),
        (["online-endpoint", "show", "-n", "e", "--local", "true"], True),
        (["online-endpoint", "show", "-n", "e", "--local", "false"], False),
        (["online-endpoint", "show", "-n", "e"], False),
    ):
        assert build_parser(argv).parse_args(argv).local is want


def test_deployment_create_local_creates_the_endpoint(cli: Cli, work: Path) -> None:
    """az ml: "If specified endpoint doesn't exist, it will be created" (--local); here it
    is a managed endpoint on the local workspace, and its sole deployment serves."""
    cli("model create --name sklearn-demo --path ./model")
    cli("online-deployment create --local -n blue --endpoint ep2 -f blue.yml")
    shown = cli("online-endpoint show --local -n ep2 -o json").json()
    assert shown["traffic"] == {"blue": 100}
    cli("online-endpoint invoke --local -n ep2 --request-file sample-request.json")
    cli("online-endpoint delete --local -n ep2 --yes")


def test_deployment_create_local_reads_the_endpoint_once(  # type: ignore[no-untyped-def]
    examples_cli, monkeypatch
) -> None:
    """``online-deployment create --local`` on an endpoint that exists reads it, and its
    deployments, once before the create: the reads that decide the warnings and the sole
    deployment's traffic are the ones the create's checks use. It read the endpoint three
    times and its deployments twice (a change between them could decide one way and check
    another)."""
    from modeldeck.services.local.client import LocalWorkspace

    real = LocalWorkspace._send
    sent: list[str] = []

    async def send(self, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(f"{method} {path}")
        return await real(self, method, path, **kwargs)

    monkeypatch.setattr(LocalWorkspace, "_send", send)
    assert examples_cli("online-deployment create --local -n blue -e my-endpoint -f blue.yml") == 0
    before = sent[: sent.index("POST /v1/endpoints/my-endpoint/deployments")]
    assert before.count("GET /v1/endpoints/my-endpoint") == 1, before
    assert before.count("GET /v1/endpoints/my-endpoint/deployments") == 1, before
