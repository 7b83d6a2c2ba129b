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
    key = next(k for k, e in anon.items() if e["users"] == ["env-ep/old"])
    shown = cli(f"environment show -n CliV2AnonymousEnvironment -v {key}").json()
    assert "six==1.15.0" in shown["description"] and shown["users"] == ["env-ep/old"]

    cli("online-deployment delete -e env-ep -n old --yes")
    assert _answer(cli, "new") == {"six": "1.16.0"}
    assert len(_built(cli)) == 2  # unused, kept for the grace time
    pruned = cli("environment prune --yes").json()
    assert len(pruned) == 1
    assert len(_built(cli)) == 1  # the one "new" runs in stays
    assert _answer(cli, "new") == {"six": "1.16.0"}


def test_a_build_that_fails_leaves_the_previous_version_serving(cli: Cli, work: Path) -> None:
    _setup(cli)
    _conda(work / "conda.yml", "six==1.16.0")
    path = _deployment_yaml(work, "blue", "environment:\n  conda_file: conda.yml\n")
    cli(f"online-deployment create -f {path.name}")
    assert _answer(cli, "blue") == {"six": "1.16.0"}
    before = _built(cli)
    shown = cli("online-deployment show -e env-ep -n blue").json()

    missing = "modeldeck-no-such-package-4f1c2"
    _conda(work / "conda.yml", "six==1.16.0", f"{missing}==1.0")
    r = cli(f"online-deployment update -e env-ep -n blue -f {path.name}", ok=False)
    assert r.code != 0
    # uv's own message names the package
    assert missing in r.err and "not found" in r.err, str(r)
    assert _answer(cli, "blue") == {"six": "1.16.0"}
    after = cli("online-deployment show -e env-ep -n blue").json()
    assert after["provisioning_state"] == "Succeeded"
    assert after["environment_inline"] == shown["environment_inline"]
    assert _built(cli) == before  # nothing half-built beside the one that serves
    logs = cli("online-deployment get-logs -e env-ep -n blue --lines 300").out
    assert missing in logs


def test_registered_environments_through_the_cli(cli: Cli, work: Path) -> None:
    _conda(work / "conda.yml", "six==1.15.0")
    (work / "env.yml").write_text("name: six-env\nconda_file: conda.yml\ndescription: old six\n")
    created = cli("environment create -f env.yml").json()
    assert (created["name"], created["version"], created["stage"]) == (
        "six-env",
        "1",
        "Development",
    )
    assert created["conda_file"]["dependencies"][-1] == {"pip": ["six==1.15.0"]}
    assert created["users"] == [] and created["size_bytes"] is None  # not built yet

    _conda(work / "conda2.yml", "six==1.16.0")
    second = cli("environment create -n six-env --conda-file conda2.yml").json()
    assert second["version"] == "2"
    assert cli("environment show -n six-env --label latest").json()["version"] == "2"
    assert [e["version"] for e in cli("environment list -n six-env").json()] == ["1", "2"]
    r = cli("environment create -f env.yml --version 2", ok=False)
    assert r.code != 0 and "already exists" in r.err

    _setup(cli)
    path = _deployment_yaml(work, "reg", "environment: azureml:six-env:1\n")
    cli(f"online-deployment create -f {path.name}")
    assert _answer(cli, "reg") == {"six": "1.15.0"}
    shown = cli("environment show -n six-env -v 1").json()
    assert shown["users"] == ["env-ep/reg"] and shown["size_bytes"] > 0
    table = cli("environment list -o table").out
    assert "six-env" in table and "env-ep/reg" in table

    # az ml prints nothing for an archive (azure-ai-ml's archive returns None)
    assert cli("environment archive -n six-env -v 2").out == ""
    assert cli("environment show -n six-env -v 2").json()["stage"] == "Archived"
    assert cli("environment show -n six-env").json()["version"] == "1"  # latest not archived
    # an archived version named explicitly keeps working; @latest skips it
    cli("online-deployment update -e env-ep -n reg --set environment=azureml:six-env@latest")
    assert _answer(cli, "reg") == {"six": "1.15.0"}

    # prune leaves the environment a deployment runs in
    cli("environment prune --yes")
    assert cli("environment show -n six-env -v 1").json()["size_bytes"] > 0
    r = cli("environment prune", ok=False)  # not a terminal: nothing without --yes
    assert r.code == 2


@pytest.mark.parametrize(
    ("environment", "files", "field", "words"),
    [
        (
            "environment:\n  conda_file: nowhere.yml\n",
            {},
            "environment.conda_file",
            ["nowhere.yml"],
        ),
        (
            "environment:\n  conda_file: conda.yml\n",
            {"conda.yml": "dependencies:\n  - python=3.11\n  - r-base=4.2\n"},
            "environment.conda_file",
            ["r-base"],
        ),
        (
            "environment: azureml://registries/azureml/environments/no-such-curated/labels/latest\n",
            {},
            "environment",
            ["no-such-curated", "sklearn-1.5"],
        ),
        (
            "environment: azureml:never-registered:1\n",
            {},
            "environment",
            ["never-registered", "environment create"],
        ),
    ],
    ids=["unreadable-conda-file", "conda-only-package", "unknown-curated", "unregistered"],
)
def test_bad_environments_are_refused_and_nothing_is_created(
    cli: Cli, work: Path, environment: str, files: dict[str, str], field: str, words: list[str]
) -> None:
    _setup(cli)
    for name, text in files.items():
        (work / name).write_text(text)
    path = _deployment_yaml(work, "bad", environment)
    r = cli(f"online-deployment create -f {path.name}", ok=False)
    assert r.code == 2, str(r)
    assert field in r.err, str(r)
    for word in words:
        assert word in r.err, str(r)
    assert cli("online-deployment list -e env-ep").json() == []
    assert _built(cli) == []


def test_a_missing_python_version_is_a_warning_naming_the_one_used(cli: Cli, work: Path) -> None:
    (work / "conda.yml").write_text("dependencies:\n  - python=3.4\n  - pip:\n    - six==1.16.0\n")
    (work / "env.yml").write_text("name: old-python\nconda_file: conda.yml\n")
    r = cli("environment create -f env.yml")
    assert "python=3.4" in r.err and "warning" in r.err.lower(), str(r)


def test_restart_set_and_automatic_prune(cli: Cli, work: Path) -> None:
    import time

    cli.env["MODELDECK_ENV_GRACE_S"] = "1"  # unused environments go after a second
    _setup(cli)
    _conda(work / "conda.yml", "six==1.15.0")
    path = _deployment_yaml(work, "blue", "environment:\n  conda_file: conda.yml\n")
    cli(f"online-deployment create -f {path.name}")
    cli("daemon stop")
    # the control plane comes back with the deployment in its environment
    deadline = time.monotonic() + 60
    while cli("online-deployment show -e env-ep -n blue").json()["provisioning_state"] != (
        "Succeeded"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert _answer(cli, "blue") == {"six": "1.15.0"}
    # --set on a deployment with an inline environment keeps it
    cli("online-deployment update -e env-ep -n blue --set instance_count=1")
    assert _answer(cli, "blue") == {"six": "1.15.0"}
    # a new conda file: a new environment; the old one is pruned by the control plane itself
    first = _built(cli)
    _conda(work / "conda.yml", "six==1.16.0")
    cli(f"online-deployment update -e env-ep -n blue -f {path.name}")
    assert _answer(cli, "blue") == {"six": "1.16.0"}
    deadline = time.monotonic() + 60
    # pruned: renamed to .trash-* at once, then deleted (wait for both, bounded)
    while first[0] in _built(cli) or any(n.startswith(".trash-") for n in _built(cli)):
        assert time.monotonic() < deadline, _built(cli)
        time.sleep(0.2)
    assert len(_built(cli)) == 1  # the one in use stays
    assert _answer(cli, "blue") == {"six": "1.16.0"}


def test_environment_create_flags_and_refusals(cli: Cli, work: Path) -> None:
    _conda(work / "conda.yml", "six==1.16.0")
    (work / "noname.yml").write_text("conda_file: conda.yml\n")
    created = cli("environment create -f noname.yml --name from-flag -v 7").json()
    assert (created["name"], created["version"]) == ("from-flag", "7")
    (work / "r.yml").write_text("dependencies:\n  - r-base=4.2\n")
    for command, words in (
        ("environment create -f missing.yml", ["missing.yml"]),
        ("environment create -n bad-env --conda-file r.yml", ["r-base"]),
        ("environment create -n bad-env", ["image", "conda_file"]),
        ("environment show -n no-such-env", ["no-such-env"]),
    ):
        r = cli(command, ok=False)
        assert r.code in (2, 3), str(r)  # 2 bad input, 3 not found
        for word in words:
            assert word in r.err, str(r)
    assert [e["name"] for e in cli("environment list").json()] == ["from-flag"]


def test_a_bad_environment_registers_no_inline_model(cli: Cli, work: Path) -> None:
    _setup(cli)
    (work / "conda.yml").write_text("dependencies:\n  - python=3.11\n  - r-base=4.2\n")
    path = _deployment_yaml(work, "inl", "environment:\n  conda_file: conda.yml\n")
    path.write_text(
        path.read_text().replace("model: azureml:sklearn-demo:1", "model:\n  path: ./model")
    )
    models = cli("model list").json()
    r = cli(f"online-deployment create -f {path.name}", ok=False)
    assert r.code == 2 and "r-base" in r.err, str(r)
    assert cli("model list").json() == models
    assert cli("online-deployment list -e env-ep").json() == []


SKLEARN_SCORE = """\
import json

import numpy
import sklearn
from sklearn.linear_model import LinearRegression

def init():
    global model
    x = numpy.array([[0.0], [1.0], [2.0], [3.0]])
    model = LinearRegression().fit(x, 2 * x[:, 0] + 1)

def run(raw_data):
    return {"sklearn": sklearn.__version__, "y": model.predict(numpy.array([[10.0]])).tolist()}
"""


def test_two_deployments_pin_different_scikit_learn_versions(cli: Cli, work: Path) -> None:
    """The issue's own case: two sklearn pins on one endpoint, each deployment in its own
    environment, both answering with a real model; deleting one keeps the other's."""
    _setup(cli)
    pins = {"old": "1.5.2", "new": "1.6.1"}
    for name, version in pins.items():
        _conda(work / f"conda-{name}.yml", f"scikit-learn=={version}")
        path = _deployment_yaml(work, name, f"environment:\n  conda_file: conda-{name}.yml\n")
        (work / f"code-{name}" / "score.py").write_text(SKLEARN_SCORE)
        cli(f"online-deployment create -f {path.name}")
    for name, version in pins.items():
        answer = _answer(cli, name)
        assert answer["sklearn"] == version
        assert answer["y"] == pytest.approx([21.0])
    assert len(_built(cli)) == 2

    cli("online-deployment delete -e env-ep -n old --yes")
    cli("environment prune --yes")
    assert len(_built(cli)) == 1
    assert _answer(cli, "new")["sklearn"] == pins["new"]


def test_os_type_linux_is_taken_and_windows_refused(cli: Cli, work: Path) -> None:
    """az ml's ``environment create --os-type`` (linux is its default): linux is taken (was
    refused as a whole flag), windows is refused by name from the flag and from the YAML's
    ``os_type:`` (which was accepted and ignored: environments are built as Linux ones)."""
    (work / "conda-os.yml").write_text("dependencies:\n  - python=3.12\n  - pip:\n    - six\n")
    made = cli("environment create -n os-env --conda-file conda-os.yml --os-type linux -o json")
    assert made.json()["os_type"] == "linux"
    refused = cli(
        "environment create -n os-env --conda-file conda-os.yml --os-type windows", ok=False
    )
    assert refused.code == 2 and "invalid os_type 'windows'" in refused.err, refused
    assert "Linux environments only" in refused.err, refused
    (work / "env-win.yml").write_text("name: win-env\nconda_file: conda-os.yml\nos_type: windows\n")
    refused = cli("environment create -f env-win.yml", ok=False)
    assert refused.code == 2 and "invalid os_type 'windows'" in refused.err, refused
    assert cli("environment list --query [].name -o tsv").out.split().count("win-env") == 0
