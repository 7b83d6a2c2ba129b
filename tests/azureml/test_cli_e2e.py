"""The real ``modeldeck`` console script, in a subprocess, against the fake ARM server.

No test backdoor: the CLI signs in the way a user who ran ``az login`` does, through
azure-identity's ``DefaultAzureCredential`` narrowed by ``AZURE_TOKEN_CREDENTIALS`` to
``AzureCliCredential``, which runs ``az account get-access-token``. The ``az`` on the
subprocess's PATH is a tiny script that prints the JSON the Azure CLI prints (or, to
play an expired session, fails the way it does). The ARM base URL is the profile's
``arm_endpoint`` (the setting sovereign clouds use).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import TIMEOUT_S, modeldeck_command

FAKE_AZ = """\
#!{python}
import json, os, sys, time
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_AZ_EXPIRED"):
    sys.stderr.write(
        "ERROR: AADSTS700082: The refresh token has expired due to inactivity.\\n"
        "To re-authenticate, please run:\\naz login --scope https://management.core.windows.net//.default\\n"
    )
    sys.exit(1)
if sys.argv[1:3] != ["account", "get-access-token"]:
    sys.exit(2)
print(json.dumps({{
    "accessToken": {token!r},
    "expiresOn": time.strftime("%Y-%m-%d %H:%M:%S.000000", time.localtime(time.time() + 3600)),
    "expires_on": int(time.time() + 3600),
    "subscription": "00000000-1111-2222-3333-444444444444",
    "tenant": "55555555-6666-7777-8888-999999999999",
    "tokenType": "Bearer",
}}))
"""


class AzCli:
    """``modeldeck`` with its own MODELDECK_HOME, a fake ``az`` first on PATH, in ``cwd``."""

    def __init__(self, tmp: Path, token: str) -> None:
        self.home = tmp / "home"
        (self.home / "config").mkdir(parents=True)
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.az_log = tmp / "az.log"
        az = self.bin / "az"
        az.write_text(FAKE_AZ.format(python=sys.executable, log=str(self.az_log), token=token))
        az.chmod(0o755)
        self.cwd = tmp / "cwd"
        self.cwd.mkdir()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AZURE_", "MODELDECK_", "MSI_", "IDENTITY_"))
        }
        self.env.update(
            MODELDECK_HOME=str(self.home),
            PATH=f"{self.bin}{os.pathsep}{os.path.dirname(sys.executable)}{os.pathsep}/usr/bin:/bin",
            AZURE_TOKEN_CREDENTIALS="AzureCliCredential",
            NO_COLOR="1",
        )

    def write_config(self, text: str) -> None:
        (self.home / "config" / "config.toml").write_text(textwrap.dedent(text))

    async def run(self, *argv: str, **env: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *modeldeck_command(),
            *argv,
            cwd=self.cwd,
            env={**self.env, **env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    def az_calls(self) -> list[list[str]]:
        if not self.az_log.exists():
            return []
        return [json.loads(line) for line in self.az_log.read_text().splitlines()]


@pytest.fixture
def cli(tmp_path: Path) -> AzCli:
    return AzCli(tmp_path, token="static-token-1")


def _profile(fake: Any, **over: str) -> str:
    values = {
        "subscription_id": fake.sub,
        "resource_group": fake.rg,
        "workspace_name": fake.ws,
        "arm_endpoint": fake.base_url,
        **over,
    }
    body = "\n".join(f'{k} = "{v}"' for k, v in values.items())
    return f'default = "cloud"\n[workspaces.cloud]\nprovider = "azureml"\n{body}\n'


async def test_cli_lists_endpoints_signed_in_through_az(cli: AzCli, seeded: Any) -> None:
    cli.write_config(_profile(seeded))
    code, out, err = await cli.run("online-endpoint", "list", "-o", "json")
    assert code == 0, err
    eps = json.loads(out)
    assert [e["name"] for e in eps] == ["my-endpoint"]
    # the token az printed is the one ARM got, for the management audience
    listed = seeded.calls("GET", suffix="/onlineEndpoints")
    assert listed and all(r.token == "static-token-1" for r in listed)
    assert all(r.query.get("api-version") == "2024-10-01" for r in listed)
    calls = cli.az_calls()
    assert calls and calls[0][:2] == ["account", "get-access-token"]
    assert calls[0][calls[0].index("--resource") + 1] == "https://management.azure.com"
    assert "static-token-1" not in out + err


async def test_cli_flags_override_the_profile_as_az_ml_takes_them(cli: AzCli, seeded: Any) -> None:
    # the profile names another workspace; the az-style flags choose the fake's one
    cli.write_config(
        _profile(seeded, subscription_id="wrong-sub", resource_group="wrong-rg", workspace_name="w")
    )
    code, out, err = await cli.run(
        "online-deployment",
        "list",
        "-e",
        "my-endpoint",
        "--workspace-name",
        seeded.ws,
        "-g",
        seeded.rg,
        "--subscription",
        seeded.sub,
        "-o",
        "json",
    )
    assert code == 0, err
    assert sorted(d["name"] for d in json.loads(out)) == ["blue", "green"]
    assert all(
        f"/subscriptions/{seeded.sub}/resourceGroups/{seeded.rg}/" in r.path
        for r in seeded.requests
    )


async def test_cli_reads_the_workspace_from_config_json(cli: AzCli, seeded: Any) -> None:
    # a profile with only the endpoint: the coordinates come from .azureml/config.json
    cli.write_config(
        f'default = "cloud"\n[workspaces.cloud]\nprovider = "azureml"\n'
        f'arm_endpoint = "{seeded.base_url}"\n'
    )
    (cli.cwd / ".azureml").mkdir()
    (cli.cwd / ".azureml" / "config.json").write_text(
        json.dumps(
            {
                "subscription_id": seeded.sub,
                "resource_group": seeded.rg,
                "workspace_name": seeded.ws,
            }
        )
    )
    code, out, err = await cli.run("online-endpoint", "show", "-n", "my-endpoint", "-o", "json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["name"] == "my-endpoint"
    assert shown["traffic"] == {"blue": 100, "green": 0}


async def test_cli_updates_send_the_full_traffic_map_read_just_before(
    cli: AzCli, seeded: Any
) -> None:
    seeded.add_deployment("my-endpoint", "red", model="sklearn-demo", version="1")
    cli.write_config(_profile(seeded, poll_interval="0.01"))
    # changed behind the CLI's back (the portal, another user): the CLI reads it just before
    seeded.endpoints["my-endpoint"]["properties"]["traffic"] = {"blue": 90, "green": 0, "red": 10}
    code, _, err = await cli.run(
        "online-endpoint", "update", "-n", "my-endpoint", "--set", "description=canary"
    )
    assert code == 0, err
    code, _, err = await cli.run(
        "online-endpoint",
        "update",
        "-n",
        "my-endpoint",
        "--traffic",
        "green=20 red=10",
        "--rest",
        "blue",
    )
    assert code == 0, err
    puts = seeded.calls("PUT", suffix="/onlineEndpoints/my-endpoint")
    assert len(puts) == 2
    # no traffic asked: every deployment's weight as read just now, never left out
    assert puts[0].body["properties"]["traffic"] == {"blue": 90, "green": 0, "red": 10}
    assert puts[1].body["properties"]["traffic"] == {"blue": 70, "green": 20, "red": 10}
    props = seeded.endpoints["my-endpoint"]["properties"]
    assert props["traffic"] == {"blue": 70, "green": 20, "red": 10}
    assert props["description"] == "canary"
    assert seeded.schema_errors == []


async def test_cli_expired_az_login_says_which_command_fixes_it(cli: AzCli, seeded: Any) -> None:
    cli.write_config(_profile(seeded))
    code, out, err = await cli.run("online-endpoint", "list", FAKE_AZ_EXPIRED="1")
    assert code != 0 and out == ""
    assert err.startswith("ERROR: cannot get an Azure access token")  # said once, by us
    assert "az login" in err
    assert "AADSTS700082" in err  # what the Azure CLI said, verbatim
    assert "Traceback" not in err
    assert seeded.requests == []  # nothing was sent without a token


async def test_cli_invoke_reaches_the_scoring_uri_with_the_key(cli: AzCli, seeded: Any) -> None:
    cli.write_config(_profile(seeded))
    request = cli.cwd / "request.json"
    request.write_text('{"data": [[1, 2, 3, 4]]}')
    code, out, err = await cli.run(
        "online-endpoint", "invoke", "-n", "my-endpoint", "--request-file", str(request)
    )
    assert code == 0, err
    assert json.loads(out) == {"deployment": "blue", "received": {"data": [[1, 2, 3, 4]]}}
    key = seeded.keys["my-endpoint"]["primaryKey"]
    scored = [r for r in seeded.requests if r.path.startswith("/score/")]
    assert [r.token for r in scored] == [key]
    assert key not in out + err


async def test_cli_failed_deployment_shows_arms_words_in_a_later_command(
    cli: AzCli, seeded: Any
) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    shutil.copytree(examples, cli.cwd / "ex")
    yml = (cli.cwd / "ex" / "blue.yml").read_text().replace("name: blue", "name: purple")
    (cli.cwd / "ex" / "purple.yml").write_text(yml)
    seeded.fail_deployments[("my-endpoint", "purple")] = {
        "code": "ResourceNotReady",
        "message": "User container has crashed or terminated.",
        "details": [
            {"code": "InitFailed", "message": "init() raised FileNotFoundError: model.pkl"}
        ],
    }
    cli.write_config(_profile(seeded, poll_interval="0.01"))
    code, _, err = await cli.run("online-deployment", "create", "-f", "ex/purple.yml")
    assert code != 0
    # ARM's words, verbatim, with our hint beside them
    assert "ResourceNotReady: User container has crashed or terminated." in err
    assert "InitFailed: init() raised FileNotFoundError: model.pkl" in err
    assert "get-logs -e my-endpoint -n purple" in err
    assert "Traceback" not in err

    # another process, later: ARM only says Failed; the reason is still shown
    code, out, err = await cli.run(
        "online-deployment", "show", "-e", "my-endpoint", "-n", "purple", "-o", "json"
    )
    assert code == 0, err
    shown = json.loads(out)
    assert shown["provisioning_state"] == "Failed"
    assert "User container has crashed or terminated." in json.dumps(shown)
    store = cli.home / "data" / "azureml" / "deployment-failures.json"
    assert store.stat().st_mode & 0o777 == 0o600
    assert seeded.schema_errors == []


async def test_az_flags_alone_name_an_azure_ml_workspace(cli: AzCli, seeded: Any) -> None:
    """No profile at all: -g/--workspace-name/--subscription open Azure ML, as az ml does."""
    code, out, err = await cli.run(
        "online-endpoint",
        "list",
        "-o",
        "json",
        "--subscription",
        seeded.sub,
        "-g",
        seeded.rg,
        "--workspace-name",
        seeded.ws,
        MODELDECK_ARM_ENDPOINT=seeded.base_url,
    )
    assert code == 0, err
    assert [e["name"] for e in json.loads(out)] == ["my-endpoint"]
    # nothing local was started for it
    assert not (cli.home / "state" / "modeldeck.sock").exists()


async def test_cli_get_logs_prints_what_az_ml_prints(cli: AzCli, seeded: Any) -> None:
    """The service's lines as it wrote them (no second time and replica in front),
    ``-c/--container`` as az ml names the containers, ``--lines 0`` as the help allows."""
    service = ["2026-11-26T10:00:00Z | INFO | root | Starting up app", "plain line"]
    seeded.logs[("my-endpoint", "green", "InferenceServer")] = service
    seeded.logs[("my-endpoint", "green", "StorageInitializer")] = ["downloaded model"]
    cli.write_config(_profile(seeded))
    base = ("online-deployment", "get-logs", "-e", "my-endpoint", "-n", "green")
    code, out, err = await cli.run(*base)
    assert code == 0, err
    assert out.splitlines() == service
    code, out, err = await cli.run(*base, "--container", "storage-initializer", "--lines", "9")
    assert code == 0, err
    assert out.splitlines() == ["downloaded model"]
    code, out, err = await cli.run(*base, "--container-type", "inference-server", "--lines", "0")
    assert code == 0, err
    assert out.strip() == ""
    bodies = [c.body for c in seeded.calls("POST", suffix="/getLogs")]
    assert bodies[-2:] == [
        {"containerType": "StorageInitializer", "tail": 9},
        {"containerType": "InferenceServer", "tail": 0},
    ]
    code, out, err = await cli.run(*base, "-c", "sidecar")
    assert code != 0 and "inference-server" in err and "sidecar" in err
