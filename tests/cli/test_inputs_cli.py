"""Issue 9, point 2, as a user meets it: the CLI refuses bad model and code inputs (exit 2)
before the control plane copies anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _bytes_under(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        total += sum(os.lstat(os.path.join(dirpath, f)).st_blocks * 512 for f in files)
    return total


def test_model_create_from_dev_zero_and_proc_is_refused(cli) -> None:  # type: ignore[no-untyped-def]
    for path in ("/dev/zero", "/proc/self"):
        r = cli(f"model create --name zero --path {path}", ok=False)
        assert r.code == 2, str(r)
        assert f"--path {path}: invalid path '" in r.err and "never a model" in r.err, str(r)
    assert _bytes_under(cli.home / "data" / "models") == 0


@pytest.mark.parametrize("script", ["../green/score.py", "/abs/score.py"])
def test_scoring_script_outside_the_code_folder_exits_2(cli, script: str) -> None:  # type: ignore[no-untyped-def]
    assert (cli.cwd / "green" / "score.py").is_file()  # '../green/score.py' exists: still refused
    r = cli(
        "online-deployment create -n blue -e my-endpoint -f blue.yml "
        f"--set code_configuration.scoring_script={script}",
        ok=False,
    )
    assert r.code == 2, str(r)
    assert "code_configuration.scoring_script" in r.err and script in r.err, str(r)
    assert "fix:" in r.err


@pytest.mark.parametrize(
    "remote", ["azureml://datastores/workspaceblobstore/paths/remote-model/", "azureml:demo:1"]
)
def test_a_remote_model_path_on_the_local_workspace_names_it_and_the_fix(cli, remote: str) -> None:  # type: ignore[no-untyped-def]
    # issue 16: the loader keeps it (Azure ML registers it as given); the local workspace,
    # which does not declare "assets.remote", refuses it naming itself and the way out
    r = cli(f"model create --name remote-model --path {remote}", ok=False)
    assert r.code == 2, str(r)
    assert "the local workspace does not fetch" in r.err, str(r)
    assert "remote assets are not supported here" not in r.err
    assert 'provider = "azureml"' in r.err, str(r)
    if remote == "azureml:demo:1":
        assert "model: azureml:demo:1" in r.err, str(r)


def test_endpoint_keys_the_local_workspace_does_not_use_still_warn(cli) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "private.yml").write_text(
        (cli.cwd / "endpoint.yml").read_text() + "public_network_access: disabled\n"
    )
    cli("cluster create --name myaks")
    r = cli("online-endpoint create -f private.yml")
    assert "public_network_access is not used: the gateway listens on loopback" in r.err, str(r)
