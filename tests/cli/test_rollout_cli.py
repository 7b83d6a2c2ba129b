"""``online-endpoint rollout`` and the endpoint YAML's ``modeldeck.rollout`` block, as an
operator sees them: a bad value stops with the flag (or the file and line) at fault and its
fix before anything is sent; ``online-endpoint show`` carries the rollout under its own
``modeldeck`` key beside az's; and, on a real daemon with real replicas and traffic, a
rollout started, watched to Succeeded, paused, resumed and aborted from the command line,
its webhook never printed in full."""

from __future__ import annotations

from pathlib import Path

import pytest
from modeldeck.cli.main import main

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
