"""az ml's ``model archive`` / ``model restore`` (azext_mlv2 custom/model.py) on the local
workspace: an archived version is left out of ``model list`` (unless --include-archived or
--archived-only) and of the latest; restore brings it back."""

from __future__ import annotations

from pathlib import Path

import pytest
from modeldeck.cli.main import main


def versions(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    capsys.readouterr()
    assert main([*argv, "--query", "[].version", "-o", "tsv"]) == 0
    return capsys.readouterr().out.split()


def latest(capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["model", "show", "-n", "demo-model", "--query", "version", "-o", "tsv"]) == 0
    return capsys.readouterr().out.strip()


def test_archive_and_restore(
    md_home: Path, work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.daemon import stop_daemon

    monkeypatch.chdir(work)
    try:
        for _ in range(2):
            assert main(["model", "create", "-n", "demo-model", "-p", "./model", "-o", "none"]) == 0
        assert latest(capsys) == "2"
        assert main(["model", "archive", "-n", "demo-model", "--label", "latest", "-o", "none"]) == 0
        assert latest(capsys) == "1"
        # az ml prints nothing for archive / restore (azure-ai-ml's models.archive returns None)
        assert main(["model", "restore", "-n", "demo-model", "-v", "2"]) == 0
        assert capsys.readouterr().out == ""
        assert main(["model", "archive", "-n", "demo-model", "-v", "2"]) == 0
        assert capsys.readouterr().out == ""
        assert versions(capsys, "model", "list", "-n", "demo-model") == ["1"]
        assert versions(capsys, "model", "list", "-n", "demo-model", "--include-archived") == ["1", "2"]
        assert versions(capsys, "model", "list", "-n", "demo-model", "--archived-only") == ["2"]
        # still usable by its version
        capsys.readouterr()
        assert main(["model", "show", "-n", "demo-model", "-v", "2", "-o", "none"]) == 0
        assert main(["model", "restore", "-n", "demo-model", "-v", "2", "-o", "none"]) == 0
        assert latest(capsys) == "2"
        assert versions(capsys, "model", "list", "-n", "demo-model") == ["1", "2"]
        assert main(["model", "archive", "-n", "demo-model", "-o", "none"]) == 2  # which version?
        assert "--label latest" in capsys.readouterr().err
    finally:
        stop_daemon(md_home)


def test_show_label_is_latest_only_and_not_with_a_version(
    md_home: Path, work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """az ml's ``model show --label``: latest, and never with --version (azure-ai-ml's
    ModelOperations.get: "Cannot specify both version and label."), as environment show has
    it; model show took any label and ignored it (``-v 1 -l latest`` showed version 1)."""
    from tests.support.daemon import stop_daemon

    monkeypatch.chdir(work)
    try:
        for _ in range(2):
            assert main(["model", "create", "-n", "demo-model", "-p", "./model", "-o", "none"]) == 0
        capsys.readouterr()
        show = ["model", "show", "-n", "demo-model", "--query", "version", "-o", "tsv"]
        assert main([*show, "--label", "latest"]) == 0
        assert capsys.readouterr().out.strip() == "2"
        assert main([*show, "-v", "1", "--label", "latest"]) == 2
        assert "invalid --label 'latest': cannot be given with --version" in capsys.readouterr().err
        assert main([*show, "--label", "production"]) == 2
        assert "invalid --label 'production': must be latest" in capsys.readouterr().err
    finally:
        stop_daemon(md_home)
