"""``online-endpoint update --traffic`` to a failed deployment on an Azure ML workspace (the
fake ARM server; issue 13, point 1): refused without ``--force``, naming the deployment,
READY 0/1 and ARM's last error, and no PUT reaches the endpoint; with ``--force`` it is
sent; a split between healthy deployments (as the azureml-examples scripts set it) needs
nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .test_cli_e2e import AzCli, _profile

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UPDATE = ("online-endpoint", "update", "-n", "my-endpoint", "--traffic")


@pytest.fixture
def cli(tmp_path: Path) -> AzCli:
    """The console script signed in through a fake ``az`` (as in test_cli_e2e)."""
    return AzCli(tmp_path, token="static-token-1")


async def test_traffic_to_a_failed_deployment_needs_force(cli: AzCli, seeded: Any) -> None:
    # purple: blue.yml under another name, whose create ARM fails as a crashed init() does
    blue = EXAMPLES / "blue.yml"
    purple = blue.read_text().replace("name: blue", "name: purple")
    (cli.cwd / "purple.yml").write_text(purple.replace("./blue", str(EXAMPLES / "blue")))
    crashed = "User container has crashed or terminated."
    seeded.fail_deployments[("my-endpoint", "purple")] = {
        "code": "ResourceNotReady",
        "message": crashed,
    }
    cli.write_config(_profile(seeded, poll_interval="0.01"))
    code, _, err = await cli.run("online-deployment", "create", "-f", "purple.yml")
    assert code != 0, err

    # healthy deployments: no --force
    code, _, err = await cli.run(*UPDATE, "blue=90 green=10")
    assert code == 0, err
    puts = len(seeded.calls("PUT", suffix="/onlineEndpoints/my-endpoint"))

    code, _, err = await cli.run(*UPDATE, "blue=80 green=10 purple=10")
    assert code == 2, err
    assert "deployment 'purple'" in err and "READY 0/1, Failed" in err, err
    assert f"last error: Failed: ResourceNotReady: {crashed}" in err, err
    assert "--force" in err
    assert len(seeded.calls("PUT", suffix="/onlineEndpoints/my-endpoint")) == puts  # not sent
    traffic = seeded.endpoints["my-endpoint"]["properties"]["traffic"]
    assert traffic == {"blue": 90, "green": 10, "purple": 0}

    code, out, err = await cli.run("online-endpoint", "show", "-n", "my-endpoint", "-o", "json")
    assert code == 0, err
    health = json.loads(out)["health"]
    assert health["status"] == "Healthy"
    assert {d["name"]: d["ready"] for d in health["deployments"]} == {
        "blue": "1/1",
        "green": "1/1",
        "purple": "0/1",
    }

    code, _, err = await cli.run(*UPDATE, "blue=80 green=10 purple=10", "--force")
    assert code == 0, err
    assert seeded.endpoints["my-endpoint"]["properties"]["traffic"]["purple"] == 10
    code, out, err = await cli.run("online-endpoint", "show", "-n", "my-endpoint", "-o", "json")
    health = json.loads(out)["health"]
    assert health["status"] == "Degraded" and health["reasons"][0].startswith("purple: READY 0/1")
    assert seeded.schema_errors == []
