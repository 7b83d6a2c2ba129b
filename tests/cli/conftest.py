"""Fixtures of the CLI's tests: a copy of examples/ to edit, and the console script."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import TIMEOUT_S, Result, modeldeck_command

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
    from modeldeck.services.local.controlplane import daemon

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
        daemon.stop_daemon(timeout=20.0)


class Cli:
    """The real ``modeldeck`` console script, run in ``cwd`` with its own MODELDECK_HOME."""

    def __init__(self, home: Path, cwd: Path) -> None:
        self.home = home
        self.cwd = cwd
        self.env = {**os.environ, "MODELDECK_HOME": str(home)}
        self.env.pop("MODELDECK_WORKSPACE", None)

    def __call__(self, command: str, ok: bool = True, stdin: str | None = None) -> Result:
        """Run ``modeldeck COMMAND`` (split as a shell would); by default it must succeed."""
        argv = shlex.split(command)
        proc = subprocess.run(
            [*modeldeck_command(), *argv],
            cwd=self.cwd,
            env=self.env,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        result = Result(list(argv), proc.returncode, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr, str(result)
        if ok:
            assert proc.returncode == 0, str(result)
        return result

    def popen(self, command: str, stdin: Any = subprocess.DEVNULL) -> subprocess.Popen[str]:
        """A command left running (``--follow``), or one that talks to a terminal."""
        return subprocess.Popen(
            [*modeldeck_command(), *shlex.split(command)],
            cwd=self.cwd,
            env=self.env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


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
