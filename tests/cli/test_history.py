"""``online-endpoint history`` after a sequence of changes, through a real local daemon
(issue 13, audit history): every change with its time (ISO 8601), who (user@host), what
and each field before -> after; keys never; a deleted deployment's changes kept."""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Callable
from datetime import datetime

import pytest
from modeldeck.cli.main import main

pytestmark = pytest.mark.e2e

EP = "my-endpoint"


def _history(capsys: pytest.CaptureFixture[str], output: str) -> tuple[str, str]:
    capsys.readouterr()
    assert main(["online-endpoint", "history", "-n", EP, "-o", output]) == 0
    got = capsys.readouterr()
    return got.out, got.err


def test_history_lists_each_change_with_who_when_and_before_after(  # type: ignore[no-untyped-def]
    examples_cli: Callable[[str], int], capsys
) -> None:
    run = examples_cli
    assert run(f"online-deployment create -n blue -e {EP} -f blue.yml") == 0
    assert run(f"online-endpoint update -n {EP} --traffic blue=100") == 0
    assert run(f"online-deployment update -n blue -e {EP} --set instance_count=0") == 0
    assert run(f"online-endpoint regenerate-keys -n {EP} --key-type secondary") == 0
    capsys.readouterr()
    assert main(["online-endpoint", "get-credentials", "-n", EP, "-o", "json"]) == 0
    keys = json.loads(capsys.readouterr().out)
    assert run(f"online-endpoint update -n {EP} --traffic blue=0") == 0
    assert run(f"online-deployment delete -n blue -e {EP} --yes") == 0

    out, _ = _history(capsys, "json")
    rows = json.loads(out)
    me = f"{getpass.getuser()}@{socket.gethostname()}"
    assert all(r["who"] == me for r in rows), rows
    for r in rows:  # ISO 8601 in UTC, as az prints times
        assert datetime.fromisoformat(r["time"]).utcoffset().total_seconds() == 0
    steps = [(r["target"], r["action"]) for r in rows]
    assert steps == [
        (EP, "create"),
        (f"{EP}/blue", "create"),
        (EP, "update"),
        (f"{EP}/blue", "update"),
        (EP, "regenerate-keys"),
        (EP, "update"),
        (f"{EP}/blue", "delete"),
        (EP, "update"),  # the deleted deployment leaves the map
    ], steps
    by_field = [{c["field"]: (c["before"], c["after"]) for c in r["changes"]} for r in rows]
    assert by_field[0]["auth_mode"] == (None, "key") and by_field[0]["compute"] == (None, "myaks")
    assert by_field[1]["model"] == (None, "azureml:sklearn-demo:1")
    assert by_field[1]["instance_count"] == (None, 1)
    assert by_field[1]["environment"][1].startswith("mcr.microsoft.com/azureml/")
    assert "description" not in by_field[1]  # a create shows the fields with a value
    assert by_field[2]["traffic.blue"] == (None, 100)
    assert by_field[3]["instance_count"] == (1, 0)
    assert set(by_field[4]) == {"secondary_key"}
    assert by_field[5]["traffic.blue"] == (100, 0)
    assert by_field[6]["instance_count"] == (0, None)
    assert by_field[7] == {"traffic.blue": (0, None)}
    assert keys["primaryKey"] not in out and keys["secondaryKey"] not in out  # keys never

    table, _ = _history(capsys, "table")
    lines = table.splitlines()
    assert lines[0].split() == ["Time", "Who", "Target", "Action", "What"], lines[0]
    assert "traffic.blue (none) -> 100" in table and "instance_count 1 -> 0" in table, table
    assert len(lines) == 2 + len(rows)

    # a deleted endpoint's history stays readable, its delete the last change
    assert run(f"online-endpoint delete -n {EP} --yes") == 0
    out, _ = _history(capsys, "json")
    last = json.loads(out)[-1]
    assert (last["target"], last["action"], last["who"]) == (EP, "delete", me)
    assert {c["field"]: c["before"] for c in last["changes"]}["compute"] == "myaks"

    capsys.readouterr()
    assert main(["online-endpoint", "history", "-n", "nope", "-o", "json"]) != 0
    assert "nope" in capsys.readouterr().err


def test_history_help_says_az_has_no_such_command(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["online-endpoint", "history", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Not an az ml command: az has none" in text
    assert "activity log" in text
