"""Environments end to end (issue 10, parts 1 and 2): deployment YAML -> uv build during the
deployment's operation -> replicas running in the built environment, through the real CLI
and a real control plane, with real uv builds.

Mechanism tests use a small pure-Python package (six 1.15.0 against 1.16.0) and a scoring
script that answers ``six.__version__``; every test builds at most three environments."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from modeldeck.services.environments.interpreters import uv_binary

from .conftest import Cli

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(400),
    pytest.mark.skipif(uv_binary() is None, reason="uv is a modeldeck dependency: install it"),
]

SCORE = """\
import six

def init():
    pass

def run(raw_data):
    return {"six": six.__version__}
"""


def _conda(path: Path, *pip: str) -> Path:
    lines = ["name: t", "dependencies:", "  - python=3.11", "  - pip", "  - pip:"]
    lines += [f"      - {p}" for p in pip]
    path.write_text("\n".join(lines) + "\n")
    return path


def _deployment_yaml(work: Path, name: str, environment: str) -> Path:
    code = work / f"code-{name}"
    code.mkdir(exist_ok=True)
    (code / "score.py").write_text(SCORE)
    path = work / f"{name}.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: {name}
            endpoint_name: env-ep
            model: azureml:sklearn-demo:1
            code_configuration:
              code: ./code-{name}
              scoring_script: score.py
            instance_count: 1
            resources:
              requests:
                cpu: 100m
                memory: 256Mi
            """
        )
        + environment
    )
    return path


def _setup(cli: Cli) -> None:
    cli("cluster create --name envpool")
    cli("model create --name sklearn-demo --path ./model")
    cli("online-endpoint create --name env-ep --set compute=azureml:envpool")


def _answer(cli: Cli, deployment: str) -> dict:
    r = cli(f"online-endpoint invoke -n env-ep -d {deployment} -r sample-request.json")
    return json.loads(r.json()) if isinstance(r.json(), str) else r.json()


def _envs_dir(cli: Cli) -> Path:
    return cli.home / "data" / "envs"


def _built(cli: Cli) -> list[str]:
    root = _envs_dir(cli)
    return sorted(p.name for p in root.iterdir() if p.name != ".locks") if root.exists() else []


def test_two_deployments_pin_different_versions(cli: Cli, work: Path) -> None:
    _setup(cli)
    _conda(work / "conda-old.yml", "six==1.15.0")
    _conda(work / "conda-new.yml", "six==1.16.0")
    old = _deployment_yaml(work, "old", "environment:\n  conda_file: conda-old.yml\n")
    new = _deployment_yaml(
        work,
        "new",
        "environment:\n  image: mcr.microsoft.com/azureml/minimal-py311-inference:latest\n"
        "  conda_file: conda-new.yml\n",
    )
    cli(f"online-deployment create -f {old.name}")
    cli(f"online-deployment create -f {new.name}")
    assert _answer(cli, "old") == {"six": "1.15.0"}
    assert _answer(cli, "new") == {"six": "1.16.0"}
    assert len(_built(cli)) == 2
    assert oct(_envs_dir(cli).stat().st_mode & 0o777) == "0o700"

    # the build's lines are in the deployment's log
    logs = cli("online-deployment get-logs -e env-ep -n old --lines 200").out
    assert "six==1.15.0" in logs

    listed = cli("environment list").json()
    anon = {e["version"]: e for e in listed if e["name"] == "CliV2AnonymousEnvironment"}
    assert sorted(u for e in anon.values() for u in e["users"]) == ["env-ep/new", "env-ep/old"]
    assert all(e["size_bytes"] > 0 for e in anon.values())

    cli("online-deployment delete -e env-ep -n old --yes")
    assert _answer(cli, "new") == {"six": "1.16.0"}
    assert len(_built(cli)) == 2  # unused, kept for the grace time
    pruned = cli("environment prune --yes").json()
    assert len(pruned) == 1
    assert len(_built(cli)) == 1  # the one "new" runs in stays
    assert _answer(cli, "new") == {"six": "1.16.0"}
