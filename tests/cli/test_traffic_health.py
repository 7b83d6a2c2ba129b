"""Traffic to a deployment that is not ready needs ``--force`` (issue 13, point 1), through
the real CLI on the local workspace: a deployment whose init() raises sits at READY 0/1
(Failed); ``online-endpoint update --traffic`` that gives it traffic is refused, naming
the deployment, READY 0/1 and the last traceback line, and the fix ``--force``; moving
traffic away from it needs nothing; ``show`` says the endpoint is Degraded once it sends
traffic there, with each deployment's READY x/y, error rate and p95."""

from __future__ import annotations

import getpass
import json
import shlex
import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from modeldeck.cli.main import main
from modeldeck.services.api.errors import InvalidInput

pytestmark = pytest.mark.e2e

BROKEN = "def init():\n    raise RuntimeError('model file is corrupt')\n\ndef run(raw_data):\n    return raw_data\n"
UPDATE = "online-endpoint update -n my-endpoint"


def deck(command: str) -> int:
    """``modeldeck COMMAND`` in-process, split as a shell would (``-o none``): its exit code."""
    return main([*shlex.split(command), "-o", "none"])


def _show(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    assert main(["online-endpoint", "show", "-n", "my-endpoint", "-o", "yaml"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_traffic_to_a_crash_looping_deployment_needs_force(  # type: ignore[no-untyped-def]
    examples_cli: Callable[[str], int], capsys
) -> None:
    run = examples_cli  # the examples' cluster, model and endpoint exist
    assert run("online-deployment create -n blue -e my-endpoint -f blue.yml --all-traffic") == 0
    assert run("online-deployment create -n green -e my-endpoint -f green.yml") == 0
    Path("red").mkdir()
    Path("red/score.py").write_text(BROKEN)
    red = "online-deployment create -n red -e my-endpoint -f blue.yml"
    assert run(f"{red} --set code_configuration.code=./red") != 0  # init() raises

    # healthy deployments: a split as the azureml-examples scripts set it needs nothing
    assert deck(f'{UPDATE} --traffic "blue=90 green=10"') == 0

    shown = _show(capsys)
    assert shown["health"]["status"] == "Healthy"  # red takes nothing yet
    by_name = {d["name"]: d for d in shown["health"]["deployments"]}
    assert by_name["red"]["ready"] == "0/1" and by_name["red"]["problem"] == "READY 0/1, Failed"
    assert by_name["red"]["last_error"] == "RuntimeError: model file is corrupt"
    assert by_name["blue"]["ready"] == "1/1" and by_name["blue"]["problem"] is None
    assert by_name["blue"]["error_rate"] is None  # no request in the window: no figure

    # traffic to red: refused, naming it, READY 0/1, the last error and --force
    capsys.readouterr()
    assert deck(f'{UPDATE} --traffic "blue=80 green=10 red=10"') == InvalidInput.exit_code
    err = capsys.readouterr().err
    assert "'red'" in err and "READY 0/1" in err, err
    assert "RuntimeError: model file is corrupt" in err and "--force" in err, err
    assert _show(capsys)["traffic"] == {"blue": 90, "green": 10, "red": 0}  # nothing applied
    # a mirror to it, the same
    assert deck(f'{UPDATE} --mirror-traffic "red=10"') == InvalidInput.exit_code
    assert "READY 0/1" in capsys.readouterr().err

    # confirmed: applied, and the endpoint reads Degraded, saying why
    assert deck(f'{UPDATE} --traffic "blue=80 green=10 red=10" --force') == 0
    shown = _show(capsys)
    assert shown["traffic"]["red"] == 10
    assert shown["health"]["status"] == "Degraded"
    (reason,) = shown["health"]["reasons"]
    assert reason.startswith("red: READY 0/1, Failed, 10% of traffic")
    assert reason.endswith("last error: RuntimeError: model file is corrupt")
    # a --query that does not ask for health does not read it; one that does, gets it
    capsys.readouterr()
    assert main(["online-endpoint", "show", "-n", "my-endpoint", "--query", "health.status"]) == 0
    assert capsys.readouterr().out.strip() == '"Degraded"'

    # the forced change is in the audit history (who, when, before -> after); the refused
    # ones changed nothing and are not
    capsys.readouterr()
    assert main(["online-endpoint", "history", "-n", "my-endpoint", "-o", "json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if r["target"] == "my-endpoint"]
    forced = rows[-1]
    assert forced["action"] == "update", forced
    assert forced["who"] == f"{getpass.getuser()}@{socket.gethostname()}"
    assert datetime.fromisoformat(forced["time"]).utcoffset().total_seconds() == 0
    changed = {c["field"]: (c["before"], c["after"]) for c in forced["changes"]}
    assert changed == {"traffic.blue": (90, 80), "traffic.red": (0, 10)}, changed
    earlier = [c for r in rows[:-1] for c in r["changes"] if c["field"].endswith(".red")]
    assert not any(c["after"] for c in earlier), earlier  # the refused attempts: no trace

    # moving traffic away from it never needs --force
    assert deck(f'{UPDATE} --traffic "blue=90 green=10"') == 0
    assert _show(capsys)["health"]["status"] == "Healthy"
