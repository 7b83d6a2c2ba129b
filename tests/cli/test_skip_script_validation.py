"""az ml's ``--skip-script-validation`` on ``online-deployment create/update``: the scoring
script is not parsed for init() and run() first (it used to be parsed all the same). A
script that defines run() in a way the check cannot see is refused without the flag and
serves with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import Cli

pytestmark = pytest.mark.e2e

DYNAMIC = """\
def init():
    pass


def _score(raw_data):
    return {"dynamic": True}


globals()["run"] = _score  # run() exists at run time, not in the source's top level
"""


def test_skip_script_validation(cli: Cli, work: Path) -> None:
    shutil.copytree(work / "blue", work / "dyn")
    (work / "dyn" / "score.py").write_text(DYNAMIC)
    deployment = (work / "blue.yml").read_text().replace("./blue", "./dyn")
    (work / "dyn.yml").write_text(deployment.replace("name: blue", "name: dyn"))
    cli("cluster create --name myaks")
    cli("model create --name sklearn-demo --path ./model")
    cli("online-endpoint create -f endpoint.yml")

    r = cli("online-deployment create -f dyn.yml --all-traffic", ok=False)
    assert r.code == 2 and "has no run()" in r.err, r

    cli("online-deployment create -f dyn.yml --all-traffic --skip-script-validation")
    answer = cli("online-endpoint invoke -n my-endpoint --request-file sample-request.json").json()
    assert answer == {"dynamic": True}
    # update too: without the flag the same script is refused, with it the update goes on
    r = cli("online-deployment update -n dyn -e my-endpoint --set instance_count=2", ok=False)
    assert r.code == 2 and "has no run()" in r.err, r
    cli(
        "online-deployment update -n dyn -e my-endpoint --set instance_count=2 "
        "--skip-script-validation"
    )
