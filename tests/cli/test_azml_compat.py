"""Every az ml flag of cli/azml.py's table (read from the az ml extension's own source) is
implemented or refused with a message naming it, never accepted and ignored; az ml
commands modeldeck lacks answer with their reason; docs/azml-compat.md is current."""

from __future__ import annotations

from pathlib import Path

import pytest
from modeldeck.cli import azml, docgen
from modeldeck.cli.main import main
from modeldeck.cli.parser import build_parser, iter_commands

REPO = Path(__file__).resolve().parents[2]


def test_every_az_flag_is_implemented_or_refused() -> None:
    commands = {
        " ".join(path): p for path, p in iter_commands(build_parser(full=True)) if len(path) == 2
    }
    gaps = []
    for key, flags in azml.COMMANDS.items():
        p = commands.get(key)
        if p is None:
            gaps.append(f"{key}: no such command")
            continue
        if key in azml.MISSING:
            assert p.get_default("_refused") == (key, azml.MISSING[key])
            continue
        have = p._option_string_actions
        for entry in (*flags, *azml.GLOBAL):
            long, short = azml.split(entry)
            if long not in have:
                gaps.append(f"{key}: {long}")
            elif short and have.get(short) is not have[long] and not azml.note(key, long):
                gaps.append(f"{key}: {short} (short of {long})")
    assert gaps == [], "az ml flags modeldeck neither takes nor refuses"
    # nothing refused that modeldeck implements, no stale entries
    for (command, flag), _ in azml.REFUSED.items():
        keys = [command] if command != "*" else list(azml.COMMANDS)
        assert any(flag in " ".join(azml.COMMANDS[k]).split() for k in keys), (command, flag)


@pytest.mark.parametrize(
    ("argv", "flag", "words"),
    [
        (["online-endpoint", "show", "-n", "ep", "--web"], "--web", "opens no browser"),
        (["online-endpoint", "show", "-n", "ep", "-e"], "-e", "opens no browser"),
        (["model", "show", "-n", "m", "--registry-name", "azureml"], "--registry-name", "registr"),
        (["environment", "list", "--archived-only"], "--archived-only", "archived"),
        (
            ["online-deployment", "create", "-f", "x.yml", "--package-model"],
            "--package-model",
            "leave the flag out",
        ),
        (
            ["online-deployment", "update", "-n", "b", "-e", "e", "--vscode-debug", "true"],
            "--vscode-debug",
            "debugger",
        ),
        (["compute", "create", "-n", "c", "--max-instances", "4"], "--max-instances", "AmlCompute"),
    ],
)
def test_a_refused_flag_stops_and_says_why(
    argv: list[str], flag: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ERROR: {flag} (az ml's) is not supported by modeldeck: "), err
    assert words in err


def test_a_missing_command_answers_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "download", "-n", "m", "-v", "1", "--download-path", "x"]) == 2
    err = capsys.readouterr().err
    assert "`model download` (az ml's) is not available in modeldeck" in err
    assert main(["model", "package", "-n", "m", "-v", "1", "-f", "package.yml"]) == 2
    assert "image builder" in capsys.readouterr().err


def test_az_tags_several_after_one_flag() -> None:
    argv = ["compute", "create", "-n", "c", "--tags", "team=ml", "stage=dev", "--tag", "x=1"]
    assert build_parser(argv).parse_args(argv).tag == ["team=ml", "stage=dev", "x=1"]


def test_compute_create_type_refuses_what_it_does_not_make(
    md_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compute", "create", "-n", "cpu-cluster", "--type", "AmlCompute"]) == 2
    err = capsys.readouterr().err
    assert "invalid --type 'AmlCompute'" in err and "pool" in err


def test_every_command_is_az_mls_or_declared_modeldecks_own() -> None:
    """A command az ml lacks (online-endpoint rollout, history...) is declared in
    ``azml.OWN`` with what az ml users do instead, so docs/azml-compat.md lists it."""
    commands = {
        " ".join(path) for path, _ in iter_commands(build_parser(full=True)) if len(path) == 2
    }
    assert sorted(commands - set(azml.COMMANDS) - set(azml.OWN)) == []
    assert sorted(set(azml.OWN) - commands) == []  # no stale entry
    assert set(azml.OWN).isdisjoint(azml.COMMANDS)
    assert "| `modeldeck online-endpoint rollout` |" in docgen.render_azml()


def test_docs_azml_compat_md_is_current() -> None:
    current = (REPO / "docs" / "azml-compat.md").read_text()
    assert current == docgen.render_azml(), (
        "docs/azml-compat.md is stale: run "
        "`python -m modeldeck.cli.docgen --azml > docs/azml-compat.md`"
    )
    assert "**missing**" not in current


def test_docs_say_local_endpoints_take_the_owners_keyless_requests() -> None:
    """Since fea42fe a ``--local`` endpoint takes its owner's requests with no key (as az ml's
    local endpoints, which deploy-local-endpoint.sh curls without one); the page said "key
    auth stays on"."""
    current = (REPO / "docs" / "azml-compat.md").read_text()
    rows = [line for line in current.splitlines() if line.startswith("| `--local` |")]
    assert rows, "no --local row"
    for row in rows:
        assert "key auth stays on" not in row, row
        assert "keyless" in row and "connection's uid" in row, row
