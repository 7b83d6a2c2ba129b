"""The grammar: --help for every command, az's flags and aliases, traffic flags, refusals."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
from modeldeck.cli import common, docgen
from modeldeck.cli.main import main
from modeldeck.cli.parser import build_parser, iter_commands
from modeldeck.services import profiles
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.specs.flags import mirror_from_flag, traffic_from_flags

REPO = Path(__file__).resolve().parents[2]
ALL = [path for path, _ in iter_commands(build_parser(full=True)) if path]


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) for p in ALL])
def test_every_command_has_help_with_examples(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: modeldeck " + " ".join(path))
    parser = dict(iter_commands(build_parser(full=True)))[path]
    if getattr(parser, "_defaults", {}).get("_refused"):  # an az command modeldeck lacks
        assert "not available" in out
        return
    if getattr(parser, "_defaults", {}).get("_cmd"):  # a command, not a group
        assert "examples:" in out
        assert "--output" in out and "--query" in out


def test_top_level_help_lists_groups_and_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in (
        "online-endpoint (endpoint)",
        "online-deployment (deployment)",
        "compute (cluster)",
        "model",
        "serve",
        "ui",
    ):
        assert word in out


def test_aliases_parse_to_the_same_command() -> None:
    for argv in (["endpoint", "show", "-n", "ep1"], ["online-endpoint", "show", "--name", "ep1"]):
        args = build_parser(argv).parse_args(argv)
        assert args._cmd == "cmd_endpoint:show" and args.name == "ep1"
    for flag in ("-e", "--endpoint", "--endpoint-name"):
        argv = ["deployment", "show", "-n", "blue", flag, "my-endpoint"]
        assert build_parser(argv).parse_args(argv).endpoint_name == "my-endpoint"
    argv = ["cluster", "create", "--name", "myaks", "--type", "aks"]
    args = build_parser(argv).parse_args(argv)
    assert (args.agent_count, args.vm_size, args.purpose) == (3, "Standard_D3_v2", "FastProd")


def test_az_flags_are_accepted() -> None:
    argv = [
        "online-deployment", "create", "-f", "blue.yml", "--all-traffic", "--set", "instance_count=2",
        "--set", "request_settings.request_timeout_ms=1000", "-g", "rg", "--workspace-name", "ws",
        "--subscription", "sub", "-o", "tsv", "--query", "name", "--no-wait",
    ]  # fmt: skip
    args = build_parser(argv).parse_args(argv)
    assert [(e.flag, e.args) for e in args.set] == [
        ("--set", ("instance_count=2",)),
        ("--set", ("request_settings.request_timeout_ms=1000",)),
    ]
    assert (args.resource_group, args.workspace_name, args.subscription) == ("rg", "ws", "sub")
    assert args.all_traffic and args.no_wait


def test_usage_error_prints_error_and_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["online-endpoint", "show"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: the following arguments are required: -n/--name")
    assert "fix:" in err
    assert main(["online-endpoint", "show", "-n", "x", "-o", "xml"]) == 2


def test_group_without_command_shows_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["online-endpoint"]) == 2
    assert "get-credentials" in capsys.readouterr().err


# --------------------------------------------------------------------------- traffic flags

DEPS = ["blue", "green"]


def test_traffic_flag_gives_a_full_map() -> None:
    assert traffic_from_flags("blue=90 green=10", None, DEPS) == {"blue": 90, "green": 10}
    assert traffic_from_flags("blue=90,green=10", None, DEPS) == {"blue": 90, "green": 10}
    # left out: 0
    assert traffic_from_flags("green=100", None, DEPS) == {"blue": 0, "green": 100}
    assert traffic_from_flags(None, None, DEPS) is None


def test_rest_takes_the_remainder() -> None:
    assert traffic_from_flags("green=20", "blue", DEPS) == {"blue": 80, "green": 20}
    assert traffic_from_flags(None, "green", DEPS) == {"blue": 0, "green": 100}
    assert traffic_from_flags("green=20", "blue", [*DEPS, "red"]) == {
        "blue": 80,
        "green": 20,
        "red": 0,
    }


@pytest.mark.parametrize(
    ("traffic", "rest", "field", "words"),
    [
        ("blue=90 green=20", None, "traffic", "add up to 110"),
        ("blue=90 red=10", None, "traffic.red", "no deployment 'red'"),
        ("blue=ninety", None, "traffic.blue", "whole number"),
        ("blue", None, "traffic", "NAME=PERCENT"),
        ("blue=101", None, "traffic.blue", "from 0 to 100"),
        ("green=20", "red", "rest", "no deployment 'red'"),
        ("green=20 blue=10", "blue", "rest", "also given"),
        ("green=120", "blue", "traffic.green", "from 0 to 100"),
        # an unset variable in --traffic "$SPLIT" must not zero every deployment
        ("", None, "--traffic", "is empty"),
        ("  ", None, "--traffic", "is empty"),
    ],
)
def test_bad_traffic_flags(traffic: str, rest: str | None, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        traffic_from_flags(traffic, rest, DEPS)
    assert exc.value.field == field
    assert words in exc.value.message
    assert exc.value.fix
    if words in ("whole number", "from 0 to 100"):  # the fix shows the form, not a number hint
        assert "blue=90 green=10" in exc.value.fix


def test_mirror_flag() -> None:
    assert mirror_from_flag("green=10", {"blue": 100, "green": 0}, DEPS) == {"green": 10}
    with pytest.raises(InvalidInput) as exc:
        mirror_from_flag("blue=10", {"blue": 100, "green": 0}, DEPS)
    assert "live traffic" in exc.value.message


# --------------------------------------------------------------------------- confirmation


def test_confirmation_is_refused_on_a_non_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a terminal, even if it says y
    args = argparse.Namespace(yes=False)
    with pytest.raises(InvalidInput) as exc:
        common.confirm(args, "The endpoint 'x' will be deleted.")
    assert "--yes" in (exc.value.fix or "")
    assert "not a terminal" in exc.value.message
    common.confirm(argparse.Namespace(yes=True), "ok")  # --yes: no question


# --------------------------------------------------------------------------- docs


def test_docs_cli_md_is_current() -> None:
    current = (REPO / "docs" / "cli.md").read_text()
    assert current == docgen.render(), (
        "docs/cli.md is stale: run `python -m modeldeck.cli.docgen > docs/cli.md`"
    )


# --------------------------------------------------------------------------- workspace profiles


def test_profile_flags(md_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = md_home / "config"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        '[workspaces.prod]\nprovider = "azureml"\nsubscription_id = "s"\n'
        'resource_group = "rg"\nworkspace_name = "ml-prod"\n'
    )
    ns = argparse.Namespace
    assert common.resolve_profile(ns(workspace=None)) == (profiles.Profile("local"), {})
    # the flags alone name an Azure ML workspace only when it can be found
    # (tests/cli/test_azure_flags.py); here no subscription is known: ignored, locally
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(md_home / "no-az"))
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    monkeypatch.chdir(md_home)
    profile, overrides = common.resolve_profile(ns(workspace=None, resource_group="x"))
    assert (profile.name, overrides) == ("local", {})
    profile, overrides = common.resolve_profile(ns(workspace=None, resource_group="rg"))
    assert profile.name == "prod" and overrides == {"resource_group": "rg"}  # the one that agrees
    profile, overrides = common.resolve_profile(
        ns(workspace="prod", resource_group="rg2", workspace_name=None, subscription=None)
    )
    assert (profile.name, overrides) == ("prod", {"resource_group": "rg2"})
    # an az script's -w WORKSPACE_NAME finds the profile of that Azure ML workspace
    profile, _ = common.resolve_profile(ns(workspace="ml-prod"))
    assert profile.name == "prod"
    from modeldeck.services.api.errors import NotFound

    with pytest.raises(NotFound) as exc:
        common.resolve_profile(ns(workspace="nowhere"))
    assert exc.value.exit_code == 3


def test_no_arguments_without_a_terminal_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal, even under pytest -s
    assert main([]) == 2
    assert "needs a terminal" in capsys.readouterr().err


@pytest.mark.parametrize(
    "line",
    [
        "cluster create myaks --agent-count 3 --vm-size Standard_D3_v2 --purpose FastProd",
        "compute show myaks",
        "cluster scale myaks --agent-count 4",
        "cluster delete myaks --yes",
    ],
)
def test_cluster_commands_take_the_name_first(line: str) -> None:
    from modeldeck.cli.cmd_compute import _the_name

    argv = line.split()
    assert _the_name(build_parser(argv).parse_args(argv)) == "myaks"
    argv = [*line.replace("myaks", "--name myaks", 1).split()]
    assert _the_name(build_parser(argv).parse_args(argv)) == "myaks"


def test_no_command_with_readonly_opens_the_dashboard_read_only() -> None:
    from modeldeck.cli.main import UI_FLAGS
    from modeldeck.cli.parser import build_parser

    assert "--readonly" in UI_FLAGS
    args = build_parser(["ui"]).parse_args(["ui", "--readonly", "--workspace", "prod"])
    assert args._cmd == "cmd_daemon:ui" and args.readonly is True and args.workspace == "prod"
    assert build_parser(["ui"]).parse_args(["ui"]).readonly is False
