"""``online-endpoint rollout`` and the endpoint YAML's ``modeldeck.rollout`` block, as an
operator sees them: a bad value stops with the flag (or the file and line) at fault and its
fix before anything is sent; ``online-endpoint show`` carries the rollout under its own
``modeldeck`` key beside az's; and, on a real daemon with real replicas and traffic, a
rollout started, watched to Succeeded, paused, resumed and aborted from the command line,
its webhook never printed in full."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from modeldeck.cli.main import main

from tests.cli.conftest import Cli
from tests.support import azml_schema as az
from tests.support.cli import Result
from tests.support.load import Load
from tests.support.rollouts import FLAG_VAR, FLAKY, webhook_receiver

SECRET = "T000/B000/s3cr3t-path"


def _nothing_sent(home: Path) -> None:
    """No control plane was started (the first call would start it): nothing was sent."""
    assert not (home / "state").exists(), sorted(p.name for p in home.iterdir())


@pytest.mark.parametrize(
    ("flags", "flag", "words"),
    [
        ("--steps 5,10,50", "--steps", "the last step must be 100"),
        ("--steps 10,5,100", "--steps", "steps must increase"),
        ("--steps 5,x,100", "--steps", "'x' is not a whole percent"),
        ("--interval 0s", "--interval", "between 1 s and 24 h"),
        ("--interval 2x", "--interval", "must be a duration"),
        ("--mirror-first 2d", "--mirror-first", "at most 24 h"),
        ("--max-error-rate lots", "--max-error-rate", "must be a number"),
        ("--max-error-rate 101", "--max-error-rate", "at most 100"),
        ("--max-p95-ratio 0.5", "--max-p95-ratio", "at least 1"),
        ("--min-requests 0", "--min-requests", "at least 1"),
        ("--min-requests 2.5", "--min-requests", "whole number"),
        ("--from green", "--from", "must differ from to"),
        ("--webhook ftp://hooks.example.com/" + SECRET, "--webhook", "http:// or https://"),
    ],
)
def test_a_bad_start_flag_is_named_with_its_fix_and_nothing_is_sent(
    md_home: Path, capsys: pytest.CaptureFixture[str], flags: str, flag: str, words: str
) -> None:
    code = main(
        ["online-endpoint", "rollout", "-n", "my-endpoint", "--to", "green", *flags.split()]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"ERROR: invalid {flag} "), err
    assert words in err and "\n  fix: " in err, err
    assert SECRET not in err  # a webhook URL is shown redacted, even when wrong
    _nothing_sent(md_home)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--to", "Gr_een"], "invalid --to 'Gr_een'"),
        (["--to", "green", "--abort"], "invalid --abort: acts on the rollout in progress"),
        (["--steps", "5,100"], "invalid --steps: is used only when a rollout starts"),
        (["--pause", "--abort"], "argument --abort: not allowed with argument --pause"),
        (["--promote", "--resume"], "not allowed with argument --promote"),
    ],
)
def test_actions_are_exclusive_and_start_flags_need_a_start(
    md_home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert main(["online-endpoint", "rollout", "-n", "my-endpoint", *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and "fix:" in err, err
    _nothing_sent(md_home)


def test_the_endpoint_name_is_required(md_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["online-endpoint", "rollout", "--pause"]) == 2
    assert "invalid --name: is required" in capsys.readouterr().err
    _nothing_sent(md_home)


# --------------------------------------------------------------------------- the YAML block

ENDPOINT = """\
$schema: https://azuremlschemas.azureedge.net/latest/kubernetesOnlineEndpoint.schema.json
name: my-endpoint
compute: azureml:myaks
auth_mode: key
modeldeck:
  rollout:
{block}
"""


def _line(text: str, snippet: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if snippet in line)


@pytest.mark.parametrize(
    ("block", "at", "words"),
    [
        ("    to: green\n    intervl: 2m", "intervl:", "unknown key 'intervl' in modeldeck.rollout; "
         "did you mean 'interval'?"),
        ("    to: green\n    steps: [5, 10, 50]", "steps:",
         "invalid modeldeck.rollout.steps [5, 10, 50]: the last step must be 100, not 50"),
        ("    from: blue", "rollout:", "invalid modeldeck.rollout: to is required"),
        ("    to: green\n    interval: soon", "interval:",
         "invalid modeldeck.rollout.interval 'soon': must be a duration"),
        ("    to: green\n    max_error_rate: '1'", "max_error_rate:",
         "invalid modeldeck.rollout.max_error_rate '1': must be a number"),
        ("    to: green\n    webhook: ftp://hooks.example.com/" + SECRET, "webhook:",
         "invalid modeldeck.rollout.webhook 'ftp://hooks.example.com/…'"),
        ("    to: green\n  rolout: {}", "rolout:", "unknown key 'rolout' in modeldeck; "
         "did you mean 'rollout'?"),
    ],
)  # fmt: skip
def test_a_bad_rollout_block_names_the_file_and_line_and_creates_nothing(
    md_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    block: str,
    at: str,
    words: str,
) -> None:
    text = ENDPOINT.format(block=block)
    path = tmp_path / "endpoint.yml"
    path.write_text(text)
    for command in (
        ["online-endpoint", "create", "-f", str(path)],
        ["online-endpoint", "update", "-f", str(path)],
        ["online-endpoint", "rollout", "-f", str(path)],
    ):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert f"{path}: line {_line(text, at)}: " in err, err
        assert words in err and "fix:" in err, err
        assert SECRET not in err
    _nothing_sent(md_home)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ("modeldeck.rollout.intervl=2m", "unknown key 'intervl' in modeldeck.rollout"),
        ("modeldeck.rollout.steps=[5,50]", "invalid modeldeck.rollout.steps [5, 50]"),
    ],
)
def test_a_bad_block_given_by_set_names_the_set(
    md_home: Path, capsys: pytest.CaptureFixture[str], edit: str, words: str
) -> None:
    argv = ["online-endpoint", "update", "-n", "my-endpoint", "--set", "modeldeck.rollout.to=green"]
    assert main([*argv, edit]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ERROR: --set {edit}: {words}"), err
    _nothing_sent(md_home)


def test_a_rollout_file_of_its_own_and_the_flags_over_it(
    md_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The block in a file of its own (az ml refuses it in the endpoint's: docs/yaml.md): its
    values are checked, and a flag given wins over the file's."""
    path = tmp_path / "rollout.yml"
    path.write_text("modeldeck:\n  rollout: {to: green, interval: 2m}\n")
    assert main(["online-endpoint", "rollout", "-f", str(path)]) == 2
    assert "the rollout needs its endpoint's name" in capsys.readouterr().err
    assert main(["online-endpoint", "rollout", "-f", str(path), "-n", "my-endpoint",
                 "--interval", "0s"]) == 2  # fmt: skip
    assert "ERROR: invalid --interval '0s'" in capsys.readouterr().err
    path.write_text("name: my-endpoint\n")
    assert main(["online-endpoint", "rollout", "-f", str(path)]) == 2
    assert "no modeldeck.rollout block to start" in capsys.readouterr().err
    _nothing_sent(md_home)


# --------------------------------------------------------------------------- on a real daemon


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on loopback whose path holds a secret, as Slack's do (it answers
    that path only)."""
    async with webhook_receiver(SECRET) as got:
        yield got


def _blue_and_green(cli: Cli, endpoint_file: str = "endpoint.yml") -> Result:
    """The walkthrough's endpoint with blue taking all the traffic and green none; the
    result of the endpoint's create."""
    cli("cluster create --name myaks -o none")
    cli("model create --name sklearn-demo --path ./model -o none")
    created = cli(f"online-endpoint create -f {endpoint_file} -o none")
    cli("online-deployment create -f blue.yml --all-traffic -o none")
    cli("online-deployment create -f green.yml -o none")
    return created


async def _watched_under_load(
    cli: Cli, flags: str, *, ok: bool = True, more: int = 0
) -> tuple[Result, Load, float]:
    """blue and green deployed, traffic through the gateway at 40 requests a second, then
    ``rollout --to green FLAGS --watch`` until it ends; the load goes on for ``more``
    answers after. The watch's result, the load, and when the watch ended."""
    await asyncio.to_thread(_blue_and_green, cli)
    ep = cli("online-endpoint show -n my-endpoint").json()
    key = cli("online-endpoint get-credentials -n my-endpoint --query primaryKey -o tsv").out
    async with Load(ep["scoring_uri"], key.strip(), rate=40) as load:
        await load.wait_for(20)
        watched = await asyncio.to_thread(
            cli, f"online-endpoint rollout -n my-endpoint --to green {flags} --watch", ok
        )
        ended = time.time()
        await load.wait_for(len(load.records) + more)
    return watched, load, ended


async def _until(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout  # only against a hang
    while not predicate():
        assert time.monotonic() < deadline, f"not {what} within {timeout:g} s"
        await asyncio.sleep(0.05)


@pytest.mark.e2e
async def test_a_healthy_rollout_watched_to_succeeded_under_real_traffic(
    cli: Cli, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, posts = hook
    redacted = url.split(SECRET)[0] + "…"  # scheme://host:port/…
    watched, load, _ = await _watched_under_load(
        cli, f"--steps 50,100 --interval 1s --min-requests 5 --max-p95-ratio 50 --webhook {url}"
    )
    assert [a for a in load.records if a.failed] == []
    changes = [json.loads(line) for line in watched.out.splitlines()]  # one object a line
    assert [c["state"] for c in changes][-1] == "Succeeded"
    assert {c["state"] for c in changes[:-1]} == {"Running"}
    assert changes[0]["control"] == "blue"  # the deployment with the traffic, not named
    assert changes[-1]["traffic"] == {"blue": 0, "green": 100}
    assert any((c["last_check"] or {}).get("verdict") == "pass" for c in changes)
    assert {c["spec"]["webhook"] for c in changes} == {redacted}
    assert SECRET not in watched.out + watched.err

    # show: az's keys as they were, the rollout under modeldeck's own key
    shown = cli("online-endpoint show -n my-endpoint")
    assert SECRET not in shown.out
    ep = shown.json()
    assert az.endpoint_problems(ep) == [], ep
    assert ep["traffic"] == {"blue": 0, "green": 100}
    rollout = ep["modeldeck"]["rollout"]
    assert (rollout["state"], rollout["treatment"], rollout["weight"]) == (
        "Succeeded",
        "green",
        100,
    )
    assert rollout["last_check"]["verdict"] == "pass"
    q = "online-endpoint show -n my-endpoint --query modeldeck.rollout.state -o tsv"
    assert cli(q).out.strip() == "Succeeded"
    table = cli("online-endpoint rollout -n my-endpoint -o table").out
    assert "Succeeded" in table and "blue=0 green=100" in table and SECRET not in table
    # the notifications went to the real URL (redacted only where it is shown)
    await _until(lambda: any(p["event"] == "promoted" for p in posts), "promoted posted")
    assert posts[0]["event"] == "started" and posts[-1]["rollout"]["state"] == "Succeeded"


ROLLOUT_BLOCK = """\
modeldeck:
  rollout:
    to: green
    steps: [5, 10, 25, 50, 100]
    interval: 30s
    min_requests: 5
"""


@pytest.mark.e2e
def test_declared_in_the_yaml_then_paused_resumed_and_aborted(cli: Cli, work: Path) -> None:
    """The block of endpoint.yml starts once green exists (create says why not before),
    once; the profile's rollout_webhook is its default; --pause, --resume; --abort asks
    first; a --watch in another terminal ends with exit 1 when it is aborted; the file
    does not start it again after."""
    default = "http://127.0.0.1:9/" + SECRET  # the discard port: refused, nothing leaves
    config = cli.home / "config"
    config.mkdir(mode=0o700)
    (config / "config.toml").write_text(
        f'[workspaces.local]\nprovider = "local"\nrollout_webhook = "{default}"\n'
    )
    (config / "config.toml").chmod(0o600)
    path = work / "endpoint.yml"
    path.write_text(path.read_text() + ROLLOUT_BLOCK)

    created = _blue_and_green(cli)
    assert "has no deployment 'green' yet" in created.err, created
    ep = cli("online-endpoint show -n my-endpoint").json()
    assert ep["modeldeck"] == {"rollout": None}  # never had one
    assert "update -f endpoint.yml" in created.err
    assert cli("online-endpoint rollout -n my-endpoint", ok=False).code == 3

    started = cli("online-endpoint update -f endpoint.yml -o none")
    assert "rollout of green on my-endpoint started (step 1/5 (5%))" in started.err, started
    shown = cli("online-endpoint rollout -n my-endpoint").json()
    assert (shown["state"], shown["weight"], shown["control"]) == ("Running", 5, "blue")
    assert shown["spec"]["webhook"] == "http://127.0.0.1:9/…"  # the profile's, redacted
    assert shown["spec"]["interval_s"] == 30 and shown["spec"]["min_requests"] == 5
    again = cli("online-endpoint update -f endpoint.yml -o none")
    assert "is running already (step 1/5 (5%)): not started again" in again.err, again
    second = cli("online-endpoint rollout -n my-endpoint --to green", ok=False)
    assert second.code == 4 and "already has a rollout of green" in second.err, second

    # an update's other edits are not read as a rollout (no file: only modeldeck.* are)
    untagged = cli("online-endpoint update -n my-endpoint --remove tags.team").json()
    assert "team" not in untagged["tags"]

    paused = cli("online-endpoint rollout -n my-endpoint --pause").json()
    assert paused["state"] == "Paused" and paused["traffic"] == {"blue": 95, "green": 5}
    assert cli("online-endpoint rollout -n my-endpoint --resume").json()["state"] == "Running"

    # --promote on a terminal asks, saying where the traffic goes; anything but y cancels
    asked = cli.answered("online-endpoint rollout -n my-endpoint --promote", "n")
    assert asked.code == 2, str(asked)
    assert "green will get all the traffic of 'my-endpoint' now" in asked.err, str(asked)
    assert "Are you sure" in asked.err and "nothing was changed" in asked.err
    assert cli("online-endpoint rollout -n my-endpoint --query weight -o tsv").out == "5\n"

    watch = cli.popen("online-endpoint rollout -n my-endpoint --watch -o json")
    try:
        refused = cli("online-endpoint rollout -n my-endpoint --abort", ok=False)
        assert refused.code == 2 and "pass --yes" in refused.err, refused
        assert "all traffic goes back to blue" in refused.err
        assert cli("online-endpoint rollout -n my-endpoint --query state -o tsv").out == "Running\n"
        aborted = cli("online-endpoint rollout -n my-endpoint --abort --yes").json()
        assert aborted["state"] == "Aborted"
        out, err = watch.communicate(timeout=60)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.communicate()
    assert watch.returncode == 1, (out, err)
    assert json.loads(out.splitlines()[-1])["state"] == "Aborted"
    assert "ERROR: the rollout of green on 'my-endpoint' Aborted: all traffic back on blue" in err
    assert "Aborted: aborted" not in err, err  # the message's own 'aborted: ' is said once
    assert SECRET not in out + err
    ep = cli("online-endpoint show -n my-endpoint").json()
    assert ep["traffic"] == {"blue": 100, "green": 0}
    assert ep["modeldeck"]["rollout"]["state"] == "Aborted"

    after = cli("online-endpoint update -f endpoint.yml -o none")
    assert "the last rollout of green on my-endpoint aborted" in after.err, after
    assert "does not start it again" in after.err
    assert cli("online-endpoint rollout -n my-endpoint --query state -o tsv").out == "Aborted\n"
    ended = cli("online-endpoint rollout -n my-endpoint --promote --yes", ok=False)
    assert ended.code == 4 and "is Aborted: nothing to promote" in ended.err, ended


@pytest.mark.e2e
async def test_a_failing_treatment_watched_to_failed_exits_1_with_its_numbers(
    cli: Cli, work: Path
) -> None:
    """green fails 3 requests in 10 (tests/support/flaky): the first check past the minimum
    fails, all traffic is back on blue, and --watch ends with exit 1 and the numbers."""
    flag = work / "fail-now"
    flag.write_text("")
    green = work / "green.yml"
    green.write_text(
        green.read_text().replace("code: ./green", f"code: {FLAKY}")
        + f"environment_variables:\n  {FLAG_VAR}: {flag}\n"
    )
    watched, load, after = await _watched_under_load(
        cli,
        "--steps 50,100 --interval 5s --min-requests 20 --max-p95-ratio 50 -o table",
        ok=False,
        more=40,
    )
    assert watched.code == 1, watched
    assert "ERROR: the rollout of green on 'my-endpoint' Failed: green " in watched.err
    assert "errors" in watched.err and "more than 1 point above" in watched.err, watched.err
    rows = watched.out.splitlines()
    assert rows[0].split()[:6] == ["Time", "State", "Phase", "Traffic", "Verdict", "Check"]
    assert "Failed" in rows[-1] and "blue=100 green=0" in rows[-1] and " fail " in rows[-1]
    # the rollback is in place: every request sent once the watch ended went to blue and
    # succeeded
    late = load.since(after)
    assert late and {a.deployment for a in late} == {"blue"}
    assert [a for a in late if a.failed] == []
    shown = cli("online-endpoint rollout -n my-endpoint").json()
    assert shown["state"] == "Failed" and shown["last_check"]["verdict"] == "fail"
    assert shown["last_check"]["treatment"]["errors"] > 0
