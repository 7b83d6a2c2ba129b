"""The official Azure ML example scripts, unchanged, with ``az ml`` mapped to ``modeldeck``.

Each script (copies in ``cli/``, source and licence in ``SOURCE.md``) runs with ``bash`` from a
copy of ``cli/``, with ``shim/`` first on ``PATH`` (``az ml ARGS`` -> ``modeldeck ARGS``; other
``az`` commands and ``docker`` skipped), against a workspace home of its own on the embedded
local workspace: real daemon, real environments built from the examples' conda files, real
replicas behind the real gateway, real ``curl``. A script passes as upstream's CI judges it
(exit 0 with ``set -e`` as written), and each test also reads what the script printed that a
user would check: the answers of ``invoke`` and of ``curl``, the statuses it tested.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.daemon import running_home

HERE = Path(__file__).resolve().parent
SHIM = HERE / "shim"
#: A bound against hangs only (environment builds download packages the first time).
TIMEOUT_S = 1500

#: model-1's answer to its sample request (a scikit-learn regression model): the first number,
#: found in both the pretty JSON `invoke` prints and the one line `curl` prints.
MODEL_1 = "11055.977245525679"
#: model-2's scoring script answers [0.5, 0.5] whatever it is sent (to tell the versions apart)
MODEL_2 = re.compile(r"\[\s*0\.5,\s*0\.5\s*\]")

pytestmark = pytest.mark.timeout(TIMEOUT_S + 60)


@dataclass
class Run:
    script: str
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"$ bash {self.script}\nexit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"

    def count(self, text: str) -> int:
        return self.out.count(text)


@pytest.fixture
def run_script(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    homes: list = []

    def run(script: str) -> Run:
        work = tmp_path_factory.mktemp("azx")
        cli = work / "cli"
        shutil.copytree(HERE / "cli", cli)
        home = tmp_path_factory.mktemp("mdz")
        context = running_home(home)
        homes.append(context)
        context.__enter__()
        bindir = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            "MODELDECK_HOME": str(home),
            "PATH": os.pathsep.join([str(SHIM), bindir, os.environ.get("PATH", "")]),
        }
        env.pop("MODELDECK_WORKSPACE", None)
        proc = subprocess.run(
            ["bash", script],
            cwd=cli,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        return Run(script, proc.returncode, proc.stdout, proc.stderr)

    yield run
    for context in homes:
        context.__exit__(None, None, None)


def _statuses(run: Run) -> None:
    assert "Endpoint created successfully" in run.out, str(run)
    assert "Deployment completed successfully" in run.out, str(run)


def test_deploy_managed_online_endpoint(run_script) -> None:
    run = run_script("deploy-managed-online-endpoint.sh")
    assert run.code == 0, str(run)
    _statuses(run)
    # `online-endpoint invoke` and `curl` with the key both got the model's answer
    assert run.count(MODEL_1) >= 2, str(run)


def test_deploy_safe_rollout_online_endpoints(run_script) -> None:
    run = run_script("deploy-safe-rollout-online-endpoints.sh")
    assert run.code == 0, str(run)
    # `show --query traffic` printed the map after green was created with no traffic
    assert re.search(r'"blue":\s*100', run.out), str(run)
    assert re.search(r'"green":\s*0\b', run.out), str(run)
    # blue answered invoke; green answered invoke --deployment-name and curl with the header
    assert run.count(MODEL_1) == 1, str(run)
    assert len(MODEL_2.findall(run.out)) == 2, str(run)


def test_deploy_local_endpoint(run_script) -> None:
    run = run_script("deploy-local-endpoint.sh")
    assert run.code == 0, str(run)
    _statuses(run)
    # `invoke --local` answered, and so did the script's `curl` with no key: a --local
    # endpoint takes its owner's own connections (same uid) without one, as az ml's local
    # endpoints do; another user's still need the key (tests/local/test_shared_host.py)
    assert run.count(MODEL_1) == 2, str(run)


def test_deploy_moe_autoscale_az_ml_part(run_script) -> None:
    run = run_script("deploy-moe-autoscale.sh")
    assert run.code == 0, str(run)
    # the ids the script hands to `az monitor autoscale` are real ARM ids, not empty
    skipped = [line for line in run.err.splitlines() if line.startswith("az shim: skipped")]
    # the deployment's id (--query id: ARM's .../onlineEndpoints/EP/deployments/NAME) and
    # the endpoint's (properties."azureml.onlineendpointid", which the service writes in
    # lower case)
    create = [line for line in skipped if "autoscale create " in line]
    assert len(create) == 1, str(run)
    assert re.search(
        r"--resource /subscriptions/\S+/onlineEndpoints/autoscale-endpt-\d+/deployments/blue ",
        create[0],
    ), str(run)
    latency = [line for line in skipped if "RequestLatency" in line]
    assert len(latency) == 1, str(run)
    assert re.search(
        r"--resource /subscriptions/\S+/onlineendpoints/autoscale-endpt-\d+$", latency[0], re.I
    ), str(run)


def test_deploy_moe_openapi(run_script) -> None:
    run = run_script("deploy-moe-openapi.sh")
    assert run.code == 0, str(run)
    _statuses(run)
    assert "Deployment failed" not in run.out, str(run)
    # both scoring scripts answered curl; both swagger documents were served
    assert run.count(MODEL_1) == 2, str(run)
    swaggers = [m for m in re.finditer(r'"swagger":\s*"2\.0"', run.out)]
    assert len(swaggers) >= 2, str(run)


def test_deploy_moe_binary_payloads(run_script) -> None:
    run = run_script("deploy-moe-binary-payloads.sh")
    assert run.code == 0, str(run)
    _statuses(run)
    # the first script answered a 128x128 thumbnail that curl saved; the second answers the
    # two uploaded images' sizes as JSON
    assert re.search(r'"input\.jpg",\s*"size":\s*\[512,\s*340\]', run.out), str(run)
    assert re.search(r'"output\.jpg",\s*"size":\s*\[128,\s*128\]', run.out), str(run)


def test_deploy_moe_inference_schema(run_script) -> None:
    run = run_script("deploy-moe-inference-schema.sh")
    assert run.code == 0, str(run)
    _statuses(run)
    assert run.out.count("Deployment completed successfully") == 3, str(run)
    # each of the three deployments answered the iris classes and served its swagger
    assert run.out.count('{"Category": ["Virginica", "Setosa"]}') == 3, str(run)
    assert run.out.count('"swagger": "2.0"') == 3, str(run)


def test_deploy_moe_minimal_single_model_registered(run_script) -> None:
    run = run_script("deploy-moe-minimal-single-model-registered.sh")
    assert run.code == 0, str(run)
    _statuses(run)
    assert run.count(MODEL_1) == 1, str(run)


def test_the_copies_are_upstreams_files_unchanged() -> None:
    """Every copied file still has the SHA-256 it has upstream (``SHA256SUMS`` was written
    from upstream's blobs at the commit ``SOURCE.md`` names): the scripts run as published."""
    expected = {}
    for line in (HERE / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        expected[name] = digest
    cli = HERE / "cli"
    found = {f"./{p.relative_to(cli)}" for p in cli.rglob("*") if p.is_file()}
    assert found == set(expected), found ^ set(expected)
    for name, digest in expected.items():
        assert hashlib.sha256((cli / name).read_bytes()).hexdigest() == digest, name
