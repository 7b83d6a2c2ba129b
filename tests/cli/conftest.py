"""Fixtures of the CLI's tests: a copy of examples/ to edit, and the console script."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli import ConsoleScript, Result
from tests.support.daemon import stop_daemon

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A copy of examples/ (YAML, model, scoring scripts) in tmp_path."""
    dest = tmp_path / "work"
    shutil.copytree(REPO / "examples", dest)
    return dest


@pytest.fixture
def examples_cli(
    md_home: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], int]]:
    """The CLI in-process (``-o none``, its exit code) in a copy of examples/ with a fresh
    home, the cluster myaks, the model and my-endpoint created; the daemon stopped after."""
    from modeldeck.cli.main import main

    monkeypatch.chdir(work)
    monkeypatch.delenv("MODELDECK_WORKSPACE", raising=False)

    def run(command: str) -> int:
        return main([*command.split(), "-o", "none"])

    try:
        assert run("cluster create --name myaks") == 0
        assert run("model create --name sklearn-demo --path ./model") == 0
        assert run("online-endpoint create -f endpoint.yml") == 0
        yield run
    finally:
        stop_daemon(md_home)


class Cli(ConsoleScript):
    """The real ``modeldeck`` console script, run in ``cwd`` with its own MODELDECK_HOME."""

    def __call__(self, command: str, ok: bool = True, stdin: str | None = None) -> Result:
        """Run ``modeldeck COMMAND`` (split as a shell would); by default it must succeed."""
        result = self.run(command, stdin)
        if ok:
            assert result.code == 0, str(result)
        return result


@pytest.fixture
def cli(work: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """A CLI on a fresh MODELDECK_HOME (short path: Unix sockets), in a copy of examples/.

    The daemon the commands start is stopped at the end (``modeldeck daemon stop``).
    """
    home = tmp_path_factory.mktemp("mdc")
    runner = Cli(home, work)
    try:
        yield runner
    finally:
        runner("daemon stop", ok=False)
